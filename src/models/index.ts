// Public surface of model cards: the type, validation, loading and defaults read from the graph.
export type { ChannelOrder, Layout, ModelCard, ResizePolicy } from './card';
export {
  CHANNEL_ORDERS,
  LAYOUTS,
  type LoadedCard,
  RESIZE_POLICIES,
  cardFromOnnx,
  checkCardAgainstModel,
  loadCard,
  resolveModel,
  validateCard,
} from './load';
export { type Draft, type DraftOptions, METADATA_KEY, draftCard } from './draft';
export { PRESETS, PRESET_NAMES, type Preset, preset } from './presets';
