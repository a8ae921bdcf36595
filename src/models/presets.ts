// Preprocessing presets for the common network families: what a bare ONNX file cannot say about
// itself (channel order, value range, normalisation, resize policy) and whether the network is a
// classifier or an embedding network (which settles a final linear layer: head or projection).
import { fail } from '../core/validate';
import type { Role } from '../onnx/outputs';
import type { ModelCard } from './card';

type Input = ModelCard['input'];

export interface Preset {
  name: string;
  description: string;
  role: Role;
  /** The family's usual input size, used only when the graph's is symbolic. */
  size: [number, number];
  input: Pick<Input, 'channels' | 'scale' | 'mean' | 'std' | 'resize'> & Pick<Input, 'whiten'>;
}

const face = (name: string, description: string, channels: 'RGB' | 'BGR', unit: boolean): Preset => ({
  name, description, role: 'embedding', size: [112, 112],
  // (x - 127.5) / 128, or [-1, 1]: x / 127.5 - 1.
  input: unit ? { channels, scale: 1 / 127.5, mean: [1, 1, 1], std: [1, 1, 1], resize: 'stretch' } : { channels, scale: 1, mean: [127.5, 127.5, 127.5], std: [128, 128, 128], resize: 'stretch' },
});

export const PRESETS: readonly Preset[] = [
  {
    name: 'imagenet', description: 'ImageNet classifiers (torchvision, timm): RGB, [0, 1] then ImageNet mean/std, 224x224 centre crop', role: 'classifier', size: [224, 224],
    input: { channels: 'RGB', scale: 1 / 255, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], resize: 'crop' },
  },
  {
    name: 'imagenet-tf', description: 'ImageNet classifiers (TF/Keras Inception, MobileNet): RGB in [-1, 1], 224x224 centre crop', role: 'classifier', size: [224, 224],
    input: { channels: 'RGB', scale: 1 / 127.5, mean: [1, 1, 1], std: [1, 1, 1], resize: 'crop' },
  },
  face('arcface-rgb', 'ArcFace/MobileFaceNet-style faces: 112x112 aligned, RGB, (x - 127.5) / 128', 'RGB', false),
  face('arcface-bgr', 'ArcFace/MobileFaceNet-style faces (insightface, OpenCV): 112x112 aligned, BGR, (x - 127.5) / 128', 'BGR', false),
  face('arcface-rgb-unit', 'ArcFace/MobileFaceNet-style faces: 112x112 aligned, RGB in [-1, 1]', 'RGB', true),
  face('arcface-bgr-unit', 'ArcFace/MobileFaceNet-style faces: 112x112 aligned, BGR in [-1, 1]', 'BGR', true),
  {
    name: 'facenet', description: 'FaceNet-style faces: 160x160, RGB, per-image whitening (prewhiten)', role: 'embedding', size: [160, 160],
    input: { channels: 'RGB', scale: 1, mean: [0, 0, 0], std: [1, 1, 1], resize: 'stretch', whiten: true },
  },
  {
    name: 'dlib', description: 'dlib-style faces (face-api ResNet): 150x150, RGB, mean RGB subtracted then / 255, padded to square', role: 'embedding', size: [150, 150],
    input: { channels: 'RGB', scale: 1, mean: [122.782, 117.001, 104.298], std: [255, 255, 255], resize: 'pad' },
  },
];

export const PRESET_NAMES = PRESETS.map((p) => p.name);

/** The preset by name; an unknown name is an error listing the presets. */
export function preset(name: string, field = 'preset'): Preset {
  return PRESETS.find((p) => p.name === name) ?? fail(RangeError, field, `one of ${PRESET_NAMES.join(', ')}`, name);
}
