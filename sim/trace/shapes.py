"""Layer geometries of the supported model shapes, without torch.

The recorder builds its PyTorch models from the same configurations, so a recorded trace
and a synthetic one of the same shape have identical layers.
"""

from __future__ import annotations

from sim.trace.schema import LayerSpec, conv_output_hw

#: VGG configurations: an int is a 3x3 conv (padding 1) with that many output channels,
#: "A" is a 2x2 average pool with stride 2.
VGG_CONFIGS = {
    "vgg16": [64, 64, "A", 128, 128, "A", 256, 256, 256, "A", 512, 512, 512, "A", 512, 512, 512, "A"],
    "vgg11": [64, "A", 128, "A", 256, 256, "A", 512, 512, "A", 512, 512, "A"],
    "vgg_small": [32, 32, "A", 64, 64, "A", 128, 128, "A"],
}


def feature_layers(cfg: list, input_shape: tuple[int, int, int], T: int) -> list[LayerSpec]:
    """Conv and pool layers of a VGG-style configuration; every output re-spikes."""
    layers, shape = [], tuple(input_shape)
    conv_i = pool_i = 0
    for item in cfg:
        c, h, w = shape
        if item == "A":
            pool_i += 1
            oh, ow = conv_output_hw(h, w, (2, 2), (2, 2), (0, 0))
            out = (c, oh, ow)
            layers.append(LayerSpec(f"pool{pool_i}", "avgpool", shape, out, (2, 2), (2, 2), (0, 0),
                                    act_scale=1.0 / T))
        else:
            conv_i += 1
            out = (int(item), h, w)
            layers.append(LayerSpec(f"conv{conv_i}", "conv2d", shape, out, (3, 3), (1, 1), (1, 1),
                                    act_scale=1.0 / T, has_bias=True))
        shape = out
    return layers


def classifier_layers(in_shape: tuple[int, ...], hidden: list[int], classes: int, T: int) -> list[LayerSpec]:
    """Flatten, hidden spiking linear layers, and a non-spiking readout."""
    flat = 1
    for d in in_shape:
        flat *= d
    layers = [LayerSpec("flatten", "flatten", in_shape, (flat,), output="passthrough")]
    prev = flat
    for i, width in enumerate(hidden, start=1):
        layers.append(LayerSpec(f"fc{i}", "linear", (prev,), (width,), act_scale=1.0 / T, has_bias=True))
        prev = width
    layers.append(LayerSpec(f"fc{len(hidden) + 1}", "linear", (prev,), (classes,), output="potential",
                            has_bias=True))
    return layers


def vgg(name: str, T: int, input_shape=(3, 32, 32), classes: int = 10, hidden: list[int] | None = None) -> list[LayerSpec]:
    feats = feature_layers(VGG_CONFIGS[name], input_shape, T)
    return feats + classifier_layers(feats[-1].output_shape, hidden or [], classes, T)


def digits_cnn(T: int, classes: int = 10) -> list[LayerSpec]:
    """Small CNN for sklearn's 8x8 digits: two convs, one pool, one hidden linear layer."""
    feats = feature_layers([16, 32, "A"], (1, 8, 8), T)
    return feats + classifier_layers(feats[-1].output_shape, [64], classes, T)


def tiny(T: int) -> list[LayerSpec]:
    """A tiny network for the bundled quick-start trace and for tests."""
    feats = feature_layers([4, 8, "A"], (2, 8, 8), T)
    return feats + classifier_layers(feats[-1].output_shape, [16], 4, T)


MODEL_SHAPES = {
    "vgg16": (lambda T: vgg("vgg16", T), (3, 32, 32)),
    "vgg11": (lambda T: vgg("vgg11", T), (3, 32, 32)),
    "vgg_small": (lambda T: vgg("vgg_small", T), (3, 32, 32)),
    "digits_cnn": (digits_cnn, (1, 8, 8)),
    "tiny": (tiny, (2, 8, 8)),
}


def model_layers(model: str, T: int) -> tuple[list[LayerSpec], tuple[int, ...]]:
    """Layers and input shape of a supported model shape."""
    if model not in MODEL_SHAPES:
        raise KeyError(model)
    build, input_shape = MODEL_SHAPES[model]
    return build(T), input_shape
