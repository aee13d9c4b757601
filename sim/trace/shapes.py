"""Layer geometries of the supported model shapes, without torch.

The recorder builds its PyTorch models from the same configurations, so a recorded trace
and a synthetic one of the same shape have identical layers.
"""

from __future__ import annotations

from sim.trace.schema import LayerSpec, NeuronModel, conv_output_hw

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


def _conv(name, inputs, in_shape, out_ch, k, stride, pad, T, neuron=None, output="spikes") -> LayerSpec:
    c, h, w = in_shape
    oh, ow = conv_output_hw(h, w, (k, k), (stride, stride), (pad, pad))
    return LayerSpec(name, "conv2d", in_shape, (out_ch, oh, ow), (k, k), (stride, stride), (pad, pad),
                     act_scale=1.0 / T, has_bias=True, inputs=inputs, neuron=None if output == "current" else neuron,
                     output=output)


def resnet(blocks: list[tuple[int, int, int]], T: int, *, stem: int = 64, hidden: list[int] | None = None,
           classes: int = 10, input_shape=(3, 32, 32), maxpool: bool = False,
           neuron: NeuronModel | None = None, residual: str = "spikes") -> list[LayerSpec]:
    """A spiking ResNet of basic blocks as a layer graph (format 3).

    ``residual``: ``spikes`` — the block's second conv and its 1x1 shortcut fire, and the add
    re-spikes the sum of its operands' spikes; ``current`` — they output currents (no neuron)
    that the add sums with the identity shortcut's spikes before its neuron fires (membrane /
    current addition, as in spiking ResNets trained directly, e.g. ResNet-19 with tdBN).

    ``blocks``: (stage, channels, stride) per basic block. Stem: a 3x3 conv to ``stem``
    channels (stride 1, padding 1), then optionally a 3x3 max-pool (stride 2, padding 1).
    A basic block is conv3x3(stride) -> conv3x3 -> add(., shortcut), the shortcut the block's
    input or, where the shape changes, a 1x1 conv with the block's stride; every conv and the
    add fire (the add re-spikes the sum of its operands' spikes, docs/trace-format.md). Then a
    global average pool, the hidden spiking linear layers and a linear readout."""
    layers: list[LayerSpec] = []
    T_ = T
    layers.append(_conv("conv1", ("input",), tuple(input_shape), stem, 3, 1, 1, T_, neuron))
    x, shape = "conv1", layers[-1].output_shape
    if maxpool:
        c, h, w = shape
        oh, ow = conv_output_hw(h, w, (3, 3), (2, 2), (1, 1))
        layers.append(LayerSpec("maxpool", "maxpool", shape, (c, oh, ow), (3, 3), (2, 2), (1, 1),
                                act_scale=1.0 / T_, inputs=(x,)))
        x, shape = "maxpool", layers[-1].output_shape
    count: dict[int, int] = {}
    for stage, ch, stride in blocks:
        count[stage] = count.get(stage, 0) + 1
        b = f"s{stage}b{count[stage]}"
        if residual not in ("spikes", "current"):
            raise ValueError(f"residual must be 'spikes' or 'current', got {residual!r}")
        a = _conv(f"{b}_conv1", (x,), shape, ch, 3, stride, 1, T_, neuron)
        c2 = _conv(f"{b}_conv2", (a.name,), a.output_shape, ch, 3, 1, 1, T_, neuron, residual)
        layers += [a, c2]
        short = x
        if stride != 1 or shape[0] != ch:
            d = _conv(f"{b}_down", (x,), shape, ch, 1, stride, 0, T_, neuron, residual)
            layers.append(d)
            short = d.name
        layers.append(LayerSpec(f"{b}_add", "add", c2.output_shape, c2.output_shape, act_scale=1.0 / T_,
                                inputs=(c2.name, short), neuron=neuron))
        x, shape = f"{b}_add", c2.output_shape
    c, h, w = shape
    layers.append(LayerSpec("avgpool", "avgpool", shape, (c, 1, 1), (h, w), (h, w), (0, 0), act_scale=1.0 / T_,
                            inputs=(x,), neuron=neuron))
    tail = classifier_layers((c, 1, 1), hidden or [], classes, T_)
    if neuron is not None:
        from dataclasses import replace
        tail = [replace(l, neuron=neuron) if l.kind == "linear" else l for l in tail]
    return layers + tail


#: CIFAR ResNet-18: four stages of two basic blocks, 64/128/256/512 channels, strides 1/2/2/2.
RESNET18_BLOCKS = [(1, 64, 1), (1, 64, 1), (2, 128, 2), (2, 128, 1), (3, 256, 2), (3, 256, 1),
                   (4, 512, 2), (4, 512, 1)]
#: ResNet-19 of the directly trained SNN literature (Zheng et al., AAAI 2021, tdBN): a 128-channel
#: stem, three stages of 3/3/2 basic blocks with 128/256/512 channels and strides 1/2/2, then
#: FC(512, 256) and FC(256, 10).
RESNET19_BLOCKS = [(1, 128, 1), (1, 128, 1), (1, 128, 1), (2, 256, 2), (2, 256, 1), (2, 256, 1),
                   (3, 512, 2), (3, 512, 1)]
#: The LIF neuron of spikingjelly's default (tau = 2: the membrane keeps half per step).
SEW_LIF = NeuronModel(type="LIF", threshold=1.0, reset="zero", leak=0.5)


def resnet18(T: int, maxpool: bool = False, neuron: NeuronModel | None = None,
             residual: str = "spikes") -> list[LayerSpec]:
    return resnet(RESNET18_BLOCKS, T, maxpool=maxpool, neuron=neuron, residual=residual)


def resnet19(T: int, maxpool: bool = False, neuron: NeuronModel | None = None,
             residual: str = "spikes") -> list[LayerSpec]:
    return resnet(RESNET19_BLOCKS, T, stem=128, hidden=[256], maxpool=maxpool, neuron=neuron, residual=residual)


def sew_resnet(T: int, maxpool: bool = True, neuron: NeuronModel | None = SEW_LIF,
               residual: str = "spikes") -> list[LayerSpec]:
    """SEW-ResNet-18 (Fang et al., NeurIPS 2021) on CIFAR: ResNet-18's graph with the stem's
    max-pool and LIF neurons (tau = 2, hard reset) by default; its residual adds sum spikes."""
    return resnet(RESNET18_BLOCKS, T, maxpool=maxpool, neuron=neuron, residual=residual)


def tiny_resnet(T: int, maxpool: bool = True, neuron: NeuronModel | None = None,
                residual: str = "spikes") -> list[LayerSpec]:
    """A tiny residual network for tests: a stem, a max-pool, one identity block and one
    downsampling block, a global pool and a readout (every new layer kind in a few hundred neurons)."""
    return resnet([(1, 4, 1), (2, 8, 2)], T, stem=4, classes=4, input_shape=(2, 8, 8), maxpool=maxpool,
                  neuron=neuron, residual=residual)


#: Graph models: they take the ``maxpool`` and ``neuron`` options of :func:`model_layers`.
GRAPH_MODELS = {"resnet18": (resnet18, (3, 32, 32)), "resnet19": (resnet19, (3, 32, 32)),
                "sew_resnet": (sew_resnet, (3, 32, 32)), "tiny_resnet": (tiny_resnet, (2, 8, 8))}

MODEL_SHAPES = {
    "vgg16": (lambda T: vgg("vgg16", T), (3, 32, 32)),
    "vgg11": (lambda T: vgg("vgg11", T), (3, 32, 32)),
    "vgg_small": (lambda T: vgg("vgg_small", T), (3, 32, 32)),
    "digits_cnn": (digits_cnn, (1, 8, 8)),
    "tiny": (tiny, (2, 8, 8)),
}


MODEL_SHAPES.update(GRAPH_MODELS)


def model_layers(model: str, T: int, *, maxpool: bool | None = None, neuron: NeuronModel | None = None,
                 residual: str | None = None) -> tuple[list[LayerSpec], tuple[int, ...]]:
    """Layers and input shape of a supported model shape. ``maxpool`` (graph models: a
    max-pool after the stem; None: the model's default) and ``neuron`` (every neuron layer's
    model; None: the model's default, IF for all but sew_resnet) apply to the graph models."""
    if model not in MODEL_SHAPES:
        raise KeyError(model)
    build, input_shape = MODEL_SHAPES[model]
    if model in GRAPH_MODELS:
        kw = {}
        if maxpool is not None:
            kw["maxpool"] = maxpool
        if neuron is not None:
            kw["neuron"] = neuron
        if residual is not None:
            kw["residual"] = residual
        return build(T, **kw), input_shape
    if maxpool or neuron is not None or residual is not None:
        raise ValueError(f"{model} is a chain model: the maxpool and neuron options are for "
                         f"{', '.join(GRAPH_MODELS)}")
    return build(T), input_shape
