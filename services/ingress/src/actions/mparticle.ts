import { allFields, type JsonDetailField } from '../looker/json-detail-reader.ts'
import { type Action, type MappedMessage } from './action.ts'
import { cellValue, fieldPicker, identityValue, isRow, MISSING } from './cell-value.ts'
import { connectionField, streamingFormats } from './segment-mapping.ts'

// Tags as in the reference (the first tag starting with `mp_` decides), identities renamed to the names of
// mParticle's v2 API that the canonical schema uses:
//   mp_customer_id → customer_id, mp_email → email, mp_facebook/google/microsoft/twitter/yahoo → same,
//   mp_other → other, mp_other2 → other_id_2, mp_other3 → other_id_3, mp_other4 → other_id_4.
// Identities travel in context.identities. userId = customer_id when the row has one; otherwise
// anonymousId = "<identity>:<value>" of the first identity present (deterministic, and the Kafka key, so
// one person's rows stay in order).
//   user_data  → identify; traits = user attributes `looker_<field name>`: every non-identity field except
//                mp_event_name (tagged or not, as in the reference).
//   event_data → track; event = mp_event_name or "looker_custom_event"; properties = mp_custom_attribute
//                fields as `looker_<field name>`; context.traits = mp_user_attribute fields; event_id,
//                session_id, session_uuid, timestamp_unixtime_ms and the custom event type go in
//                context.mParticle.
// context.device = mp_device_info fields by the part of the name after the first "."; a name that is not an
// mParticle device_info key is not sent, and the send's verdict names it (the reference dropped it silently).
// integrations.mParticle = { connection, environment, dataType, eventType }. Environment: anything but
// "production" is "development", as in the reference.

const PIVOT_REASON =
  'mParticle does not support pivoted queries: a user or custom attribute holds one value, a pivoted column holds ' +
  'one per pivot value. Remove the pivot from the Look and send again.'

const IDENTITIES: Record<string, string> = {
  mp_customer_id: 'customer_id',
  mp_email: 'email',
  mp_facebook: 'facebook',
  mp_google: 'google',
  mp_microsoft: 'microsoft',
  mp_twitter: 'twitter',
  mp_yahoo: 'yahoo',
  mp_other: 'other',
  mp_other2: 'other_id_2',
  mp_other3: 'other_id_3',
  mp_other4: 'other_id_4',
}

const EVENT_DATA: Record<string, string> = {
  mp_event_id: 'event_id',
  mp_timestamp_unixtime_ms: 'timestamp_unixtime_ms',
  mp_session_id: 'session_id',
  mp_session_uuid: 'session_uuid',
  mp_custom_event_type: 'custom_event_type',
}

const DEVICE_INFO_KEYS = new Set([
  'brand', 'product', 'device', 'android_uuid', 'device_manufacturer', 'platform', 'os_version', 'device_model',
  'screen_height', 'screen_width', 'screen_dpi', 'device_country', 'locale_language', 'locale_country',
  'network_country', 'network_carrier', 'network_code', 'network_mobile_country_code', 'timezone_offset',
  'build_identifier', 'http_header_user_agent', 'ios_advertising_id', 'push_token', 'cpu_architecture',
  'is_tablet', 'push_notification_sound_enabled', 'push_notification_vibrate_enabled',
  'radio_access_technology', 'supports_telephony', 'has_nfc', 'bluetooth_enabled', 'bluetooth_version',
  'ios_idfv', 'android_advertising_id', 'build_version_release', 'limit_ad_tracking',
]) // prettier-ignore

const EVENT_TYPES = [
  'navigation',
  'location',
  'search',
  'transaction',
  'user_content',
  'user_preference',
  'social',
  'media',
  'other',
]

function mpTag(field: JsonDetailField): string | undefined {
  return (field.tags ?? []).find((tag) => tag.startsWith('mp_'))
}

export const mparticle: Action = {
  name: 'mparticle',
  label: 'mParticle',
  description: 'Send user profiles or events to mParticle.',
  destination: 'mparticle',
  integration: 'mParticle',
  requiredFields: [],
  form: [
    connectionField,
    {
      name: 'data_type',
      label: 'Data Type',
      type: 'select',
      default: 'user_data',
      required: true,
      options: [
        { name: 'user_data', label: 'User Profiles' },
        { name: 'event_data', label: 'Events' },
      ],
    },
    {
      name: 'environment',
      label: 'Environment',
      description: 'Anything but production is sent as development.',
      type: 'select',
      default: 'development',
      required: false,
      options: [
        { name: 'production', label: 'Production' },
        { name: 'development', label: 'Development' },
      ],
    },
    {
      name: 'custom_event_type',
      label: 'Custom Event Type',
      description: 'For events; an mp_custom_event_type column overrides it per row.',
      type: 'select',
      default: 'other',
      required: false,
      options: EVENT_TYPES.map((name) => ({ name, label: name })),
    },
  ],
  supportedFormats: streamingFormats,
  validateForm(form) {
    const errors: Record<string, string> = {}
    if (form.data_type !== 'user_data' && form.data_type !== 'event_data') {
      errors.data_type = 'Data Type must be user_data or event_data.'
    }
    if (!EVENT_TYPES.includes(form.custom_event_type ?? '')) {
      errors.custom_event_type = `Custom Event Type must be one of ${EVENT_TYPES.join(', ')}.`
    }
    return errors
  },
  prepare(fields, context) {
    // As Braze: refused up front rather than every row dead-lettered by the service for an attribute holding an object.
    if (Array.isArray(fields.pivots) && fields.pivots.length > 0) return { ok: false, reason: PIVOT_REASON }
    const list = allFields(fields)
    const isEvents = context.form.data_type === 'event_data'
    const identities: { key: string; field: JsonDetailField }[] = []
    // Attributes with their message key, `looker_<field name>`, built once per send.
    const userAttributes: { key: string; field: JsonDetailField }[] = []
    const customAttributes: { key: string; field: JsonDetailField }[] = []
    const device: { key: string; field: JsonDetailField }[] = []
    const eventData: { key: string; field: JsonDetailField }[] = []
    let eventNameField: JsonDetailField | undefined
    const skippedDevice: string[] = []
    for (const field of list) {
      const tag = mpTag(field)
      const identity = tag === undefined ? undefined : IDENTITIES[tag]
      if (identity !== undefined) {
        identities.push({ key: identity, field })
        continue
      }
      if (tag === 'mp_event_name') {
        eventNameField ??= field
        continue
      }
      if (tag === 'mp_device_info') {
        const key = field.name.slice(field.name.indexOf('.') + 1)
        // As mParticle's own action does: only predefined device_info keys are sent; the others are skipped, and
        // the verdict says which.
        if (DEVICE_INFO_KEYS.has(key)) device.push({ key, field })
        else skippedDevice.push(field.name)
        continue
      }
      if (!isEvents || tag === 'mp_user_attribute') userAttributes.push({ key: `looker_${field.name}`, field })
      else if (tag === 'mp_custom_attribute') customAttributes.push({ key: `looker_${field.name}`, field })
      else if (tag !== undefined && EVENT_DATA[tag] !== undefined) eventData.push({ key: EVENT_DATA[tag], field })
    }
    if (identities.length === 0) {
      return {
        ok: false,
        reason: `Query requires at least one field tagged with an mParticle identity (${Object.keys(IDENTITIES).join(', ')}).`,
      }
    }
    const environment = context.form.environment === 'production' ? 'production' : 'development'
    const eventType = context.form.custom_event_type ?? 'other'
    const integrations = {
      All: false,
      mParticle: {
        connection: context.connection,
        environment,
        dataType: isEvents ? 'event_data' : 'user_data',
        eventType,
      },
    }
    const pickIdentities = fieldPicker(identities, (d) => d.field.name)
    const pickUserAttributes = fieldPicker(userAttributes, (a) => a.field.name)
    const pickCustomAttributes = fieldPicker(customAttributes, (a) => a.field.name)
    const pickDevice = fieldPicker(device, (d) => d.field.name)
    const pickEventData = fieldPicker(eventData, (d) => d.field.name)
    const attributes = (row: Record<string, unknown>, list: readonly { key: string; field: JsonDetailField }[]) => {
      const out: Record<string, unknown> = {}
      for (const { key, field } of list) {
        const value = cellValue(row, field)
        if (value !== MISSING) out[key] = value
      }
      return out
    }
    const notes =
      skippedDevice.length === 0
        ? []
        : [
            `not sent: ${skippedDevice.join(', ')} (tagged mp_device_info, but not one of mParticle's predefined device_info fields).`,
          ]
    return {
      ok: true,
      notes,
      mapRow(row) {
        if (!isRow(row)) return { ok: false, reason: 'row is not a JSON object' }
        const ids: Record<string, string> = {}
        // The first identity set (the identity keys are not integer-like, so also the first of ids' entries).
        let firstKey: string | undefined
        for (const { key, field } of pickIdentities(row)) {
          const value = identityValue(cellValue(row, field))
          if (typeof value === 'object') return { ok: false, reason: `identity field ${field.name} holds ${value.bad}` }
          if (value !== undefined && ids[key] === undefined) {
            ids[key] = value
            firstKey ??= key
          }
        }
        if (firstKey === undefined) return { ok: false, reason: 'row has no mParticle identity value' }
        const context: Record<string, unknown> = { identities: ids }
        if (device.length > 0) {
          const info: Record<string, unknown> = {}
          for (const { key, field } of pickDevice(row)) {
            const value = cellValue(row, field)
            if (value !== MISSING) info[key] = value
          }
          context.device = info
        }
        const message: MappedMessage = isEvents
          ? {
              type: 'track',
              event: 'looker_custom_event',
              properties: attributes(row, pickCustomAttributes(row)),
              context,
              integrations,
            }
          : { type: 'identify', traits: attributes(row, pickUserAttributes(row)), context, integrations }
        if (ids.customer_id !== undefined) message.userId = ids.customer_id
        else message.anonymousId = `${firstKey}:${ids[firstKey]}`
        if (isEvents) {
          if (eventNameField) {
            const name = identityValue(cellValue(row, eventNameField))
            if (typeof name === 'object') {
              return { ok: false, reason: `mp_event_name field ${eventNameField.name} holds ${name.bad}` }
            }
            if (name !== undefined) message.event = name
          }
          if (userAttributes.length > 0) context.traits = attributes(row, pickUserAttributes(row))
          if (eventData.length > 0) {
            const data: Record<string, unknown> = {}
            for (const { key, field } of pickEventData(row)) {
              const value = cellValue(row, field)
              if (value !== MISSING && value !== null) data[key] = value
            }
            context.mParticle = data
          }
        }
        return { ok: true, messages: [message] }
      },
    }
  },
}
