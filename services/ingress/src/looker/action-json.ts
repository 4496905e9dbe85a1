import { type Action } from '../actions/action.ts'
import { type LookerVersion } from './looker-version.ts'

/** An action as Looker's action list expects it (snake_case, reference ActionDefinition fields). */
export function actionJson(action: Action, baseUrl: string, version: LookerVersion | undefined) {
  const base = baseUrl.replace(/\/+$/, '')
  return {
    name: action.name,
    label: action.label,
    description: action.description,
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

export function formJson(action: Action) {
  return {
    fields: action.form.map((field) => ({
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
