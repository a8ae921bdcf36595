// Public surface of the ONNX utilities: protobuf I/O and constructors, graph lookups and surgery,
// weights as float32, classifier heads, ONNX Runtime sessions.
export { OPSET, type AttrValue, attribute, decodeModel, encodeModel, floatTensor, int64Tensor, model, node, type onnx, onnxSchema, readModel, readModelBytes, valueInfo, writeModel } from './proto';
export type { Int64, OnnxAttribute, OnnxGraph, OnnxModel, OnnxNode, OnnxTensor, OnnxValueInfo } from './types';
export { type Dim, GraphIndex, UnknownTensorError, withOutputs } from './graph';
export { type FloatTensor, dataTypeName, dimsOf, halfToFloat, tensorToFloat32, toInt } from './tensor';
export { type HeadLocation, findHead, logitsBeforeSoftmax, readHead } from './head';
export { type OpenedSession, openSession, probeOutputDims } from './runtime';
export { DEVICES, type Device, type Provider, type RuntimeOptions } from './session-options';
