// Model cards: everything needed to turn images into a network's embeddings (and logits),
// stored as JSON next to the ONNX file. Written by the importers, read by the extraction
// pipeline. Validated and loaded by load.ts (validateCard, loadCard, cardFromOnnx, resolveModel);
// completed from the graph, its metadata and presets by draft.ts.

export type Layout = 'NCHW' | 'NHWC';
export type ChannelOrder = 'RGB' | 'BGR';
/** shorter-side resize + centre crop, plain stretch to the input size, or letterbox padding. */
export type ResizePolicy = 'crop' | 'stretch' | 'pad';

export interface ModelCard {
  /** Catalogue id or a user's name, e.g. "faceres", "mobilenet-v1-0.25-128". */
  id: string;
  /** The ONNX file, relative to the card's own directory. */
  onnx: string;
  input: {
    /** Graph input name. */
    name: string;
    /** [height, width]. */
    size: [number, number];
    layout: Layout;
    channels: ChannelOrder;
    /** value = (pixel * scale - mean[c]) / std[c], pixel in 0..255 (scale 1/255 for 0..1 models). */
    scale: number;
    mean: [number, number, number];
    std: [number, number, number];
    resize: ResizePolicy;
    /**
     * Fraction of each side kept by a centred crop before resizing (default 1: the whole
     * image). Face networks on unaligned photos such as LFW's 250x250 use ~0.5-0.6 so the face
     * fills the input as it did in training.
     */
    crop?: number;
    /**
     * Where that crop is centred, as fractions of the image's width and height (default [0.5, 0.5]);
     * the window is kept inside the image. E.g. the dlib-style face-api ResNet on an aligned face
     * (src/faces): its training crops sit lower on the face than ArcFace's.
     */
    cropCentre?: [number, number];
    /**
     * Per-image standardisation after scale/mean/std: (v - mean(v)) / max(std(v), 1/sqrt(n)) over
     * all the image's values (FaceNet's prewhiten). Default false.
     */
    whiten?: boolean;
  };
  /** The embedding: any tensor of the graph, by name (exposed as an extra output when intermediate). */
  embedding: { tensor: string; dim: number };
  /** Classifiers: the logits tensor and the classifier head logits = W e + c (null in a card file: none, do not look in the graph). */
  logits?: {
    tensor: string;
    classes: number;
    /** Initializer names of W (classes x dim, or dim x classes with transposed: true) and c. */
    head?: { weight: string; bias?: string; transposed?: boolean };
    /** Class k of the logits is label index k + offset (e.g. 1001-way TFLite models: offset -1, 0 = background). */
    labelOffset?: number;
  };
  /** Where the weights came from (package, file, licence). */
  source?: string;
}
