// Public surface of model cards: the type, validation, loading and defaults read from the graph.
export type { ChannelOrder, Layout, ModelCard, ResizePolicy } from './card';
export {
  CHANNEL_ORDERS,
  DEFAULT_INPUT,
  LAYOUTS,
  type LoadedCard,
  RESIZE_POLICIES,
  cardFromOnnx,
  checkCardAgainstModel,
  loadCard,
  resolveModel,
  validateCard,
} from './load';
export { type ModelHandle, modelHandle, openModel } from './handle';
