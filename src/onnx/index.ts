// Public surface of the ONNX utilities: protobuf I/O and constructors, graph lookups and surgery,
// weights as float32, classifier heads, ONNX Runtime sessions.
export { OPSET, type AttrValue, attribute, decodeModel, encodeModel, floatTensor, int64Tensor, model, node, type onnx, onnxSchema, readModel, readModelBytes, valueInfo, writeModel } from './proto';
export { type Dim, GraphIndex, UnknownTensorError, withOutputs } from './graph';
export { type FloatTensor, dataTypeName, dimsOf, halfToFloat, tensorToFloat32, toInt } from './tensor';
export { type HeadLocation, findHead, logitsBeforeSoftmax, readHead } from './head';
export { DEVICES, type Device, type OpenedSession, type Provider, type RuntimeOptions, openSession, probeOutputDims } from './runtime';
