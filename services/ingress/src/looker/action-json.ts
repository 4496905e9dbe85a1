import { type Action } from '../actions/action.ts'
import { type LookerVersion } from './looker-version.ts'

/**
 * An action as Looker's action list expects it (snake_case, reference ActionDefinition fields). `unavailable`
 * (why its destination cannot deliver now) marks it in the label and description; its form then says why.
 */
export function actionJson(action: Action, baseUrl: string, version: LookerVersion | undefined, unavailable?: string) {
  const base = baseUrl.replace(/\/+$/, '')
  return {
    name: action.name,
    label: unavailable === undefined ? action.label : `${action.label} (unavailable)`,
    description: unavailable === undefined ? action.description : `Unavailable: ${unavailable}.`,
    url: `${base}/actions/${action.name}/execute`,
    form_url: `${base}/actions/${action.name}/form`,
    icon_data_uri: null,
    // No params: destination credentials live in the destination services, named by the form's connection.
    params: [],
    required_fields: action.requiredFields,
    supported_action_types: ['query'],
    supported_formats: action.supportedFormats(version),
    supported_formattings: ['unformatted'],
    supported_visualization_formattings: ['noapply'],
    supported_download_settings: ['url'],
    uses_oauth: false,
    delegate_oauth: false,
  }
}

/**
 * The action's form. `connections` (the registered connections of its destination) turn the connection field
 * into a select of them, `default` first when it exists.
 */
export function formJson(action: Action, connections?: readonly string[]) {
  const fields = action.form.map((field) => {
    if (field.name !== 'connection' || connections === undefined) return field
    const names = [...connections].sort((a, b) => (a === 'default' ? -1 : b === 'default' ? 1 : a.localeCompare(b)))
    return {
      ...field,
      type: 'select' as const,
      default: names[0] ?? field.default,
      options: names.map((name) => ({ name, label: name })),
    }
  })
  return {
    fields: fields.map((field) => ({
      name: field.name,
      label: field.label,
      ...(field.description === undefined ? {} : { description: field.description }),
      type: field.type,
      ...(field.default === undefined ? {} : { default: field.default }),
      required: field.required ?? false,
      ...(field.options === undefined ? {} : { options: field.options }),
    })),
  }
}
