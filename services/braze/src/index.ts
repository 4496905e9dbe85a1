export { BRAZE_REST_HOSTS, BrazeConfig, BrazeConnectionConfig } from './config.ts'
export {
  DEFAULT_EXPORT_LABEL,
  attributeValueProblem,
  braze,
  brazeItem,
  classifyBrazeResponse,
  toBrazeAttributes,
  type BrazeConnection,
  type BrazeItem,
} from './braze.ts'
