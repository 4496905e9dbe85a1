export { BRAZE_REST_HOSTS, BrazeConfig, BrazeConnectionConfig } from './config.ts'
export {
  DEFAULT_EXPORT_LABEL,
  attributeValueProblem,
  braze,
  brazeItem,
  brazeRowConnection,
  classifyBrazeResponse,
  toBrazeAttributes,
  toBrazeItem,
  type BrazeConnection,
  type BrazeItem,
  type BrazeRowConnection,
} from './braze.ts'
