// Placeholder until packages/events exports its JSON Schemas (see docs/producing.md).
export {}
