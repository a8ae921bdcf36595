// The parts of an ONNX model embmap reads and writes, as plain objects: the fields of onnx-proto's
// message interfaces (onnx.IModelProto, ...) that embmap uses, declared here so that embmap's
// declarations compile without onnx-proto (an optional peer dependency). Each type takes how its
// int64 fields are held as I: decoded models fit the default, and the models embmap builds
// (I = number) fit onnx-proto's own types too, whose Long is a class no other type matches.

/** An int64 field: a number, or a Long when protobufjs decodes with the long package present. */
export type Int64 = number | { toNumber(): number };

export interface OnnxModel<I extends Int64 = Int64> {
  irVersion?: I | null;
  opsetImport?: { domain?: string | null; version?: I | null }[] | null;
  producerName?: string | null;
  producerVersion?: string | null;
  docString?: string | null;
  graph?: OnnxGraph<I> | null;
  metadataProps?: { key?: string | null; value?: string | null }[] | null;
}

export interface OnnxGraph<I extends Int64 = Int64> {
  name?: string | null;
  node?: OnnxNode<I>[] | null;
  initializer?: OnnxTensor<I>[] | null;
  input?: OnnxValueInfo<I>[] | null;
  output?: OnnxValueInfo<I>[] | null;
  valueInfo?: OnnxValueInfo<I>[] | null;
}

export interface OnnxNode<I extends Int64 = Int64> {
  name?: string | null;
  opType?: string | null;
  domain?: string | null;
  input?: string[] | null;
  output?: string[] | null;
  attribute?: OnnxAttribute<I>[] | null;
}

export interface OnnxAttribute<I extends Int64 = Int64> {
  name?: string | null;
  /** AttributeProto.AttributeType. */
  type?: number | null;
  f?: number | null;
  i?: I | null;
  s?: Uint8Array | null;
  t?: OnnxTensor<I> | null;
  floats?: number[] | null;
  ints?: I[] | null;
}

export interface OnnxTensor<I extends Int64 = Int64> {
  name?: string | null;
  dims?: I[] | null;
  /** TensorProto.DataType. */
  dataType?: number | null;
  rawData?: Uint8Array | null;
  floatData?: number[] | null;
  doubleData?: number[] | null;
  int32Data?: number[] | null;
  int64Data?: I[] | null;
  /** TensorProto.DataLocation. */
  dataLocation?: number | null;
}

/** A graph input, output or value_info: a tensor's element type (TensorProto.DataType) and shape. */
export interface OnnxValueInfo<I extends Int64 = Int64> {
  name?: string | null;
  type?: {
    tensorType?: {
      elemType?: number | null;
      shape?: { dim?: { dimValue?: I | null; dimParam?: string | null }[] | null } | null;
    } | null;
  } | null;
}
