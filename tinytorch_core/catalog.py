"""The curriculum: the one table of stages, what each introduces and how to install it.

Everything else (errors, the CLI, milestones, tests, docs checks) reads this table;
nothing copies it. A stage's plugin registers exactly the symbols listed here (a test
checks that), so a missing stage can be named even though its code is not installed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType

#: namespaces through which registered symbols are reached: ``tinytorch_core.<namespace>.<name>``
NAMESPACES = ("nn", "ops", "optim", "data", "init", "io", "text", "profiler", "compression", "generation",
              "distributed", "acceleration")


@dataclass(frozen=True)
class Package:
    """One installable distribution of the project."""

    name: str
    distribution: str
    folder: str  # relative to the repository root
    package: str  # import package
    title: str
    introduces: str
    requires: tuple[str, ...] = ()
    order: int | None = None  # stages only
    symbols: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    commands: tuple[str, ...] = ()  # ``tinytorch`` subcommands only this package may register
    milestones: tuple[str, ...] = ()  # milestone names only this package may register

    @property
    def is_stage(self) -> bool:
        return self.order is not None

    def provides(self, namespace: str, name: str) -> bool:
        return name in self.symbols.get(namespace, ())

    def symbol_names(self) -> list[tuple[str, str]]:
        """(namespace, name) of every symbol the stage provides outside ``ops``: its layers,
        optimizers, data, init, io and text names."""
        return [(ns, name) for ns, names in self.symbols.items() if ns != "ops" for name in names]


def _symbols(**namespaces) -> MappingProxyType:
    unknown = set(namespaces) - set(NAMESPACES)
    if unknown:
        raise ValueError(f"unknown namespaces {sorted(unknown)}")
    return MappingProxyType({k: tuple(v.split()) for k, v in namespaces.items()})


STAGES: tuple[Package, ...] = (
    Package(
        name="core",
        order=0,
        distribution="tinytorch-core",
        folder=".",
        package="tinytorch_core",
        title="Tensors and autograd",
        introduces="Tensor, Function, autograd, primitive ops, Module, Parameter, plugin host, gradcheck",
        symbols=_symbols(
            ops="add sub mul div pow neg exp log sqrt abs maximum minimum clip where floor_divide remainder cast clone matmul "
            "sum mean max min var reshape transpose broadcast_to getitem setitem concatenate stack "
            "sin cos square reciprocal rsqrt log1p expm1 sign floor ceil trunc round isnan isinf isfinite "
            "gather index_select masked_fill tril triu flip roll repeat split cumsum prod logsumexp norm",
        ),
    ),
    Package(
        name="nn",
        order=1,
        distribution="tinytorch-nn",
        folder="plugins/nn",
        package="tinytorch_nn",
        requires=("core",),
        title="Layers, losses, optimizers and data",
        introduces="Linear, activations, losses, optimizers, data loading, init, saving",
        symbols=_symbols(
            nn="Linear Sequential Identity Dropout ReLU LeakyReLU Sigmoid Tanh GELU Softmax LogSoftmax "
            "MSELoss BCELoss BCEWithLogitsLoss CrossEntropyLoss NLLLoss",
            ops="linear relu leaky_relu sigmoid tanh gelu softmax log_softmax dropout mse_loss "
            "binary_cross_entropy binary_cross_entropy_with_logits sigmoid_binary_cross_entropy "
            "cross_entropy nll_loss",
            optim="SGD Adam AdamW RMSprop Adagrad StepLR MultiStepLR ExponentialLR CosineAnnealingLR LinearWarmup "
            "clip_grad_norm_ clip_grad_value_",
            data="Dataset TensorDataset DataLoader",
            init="xavier_uniform_ xavier_normal_ kaiming_uniform_ kaiming_normal_ zeros_ ones_",
            io="save load",
        ),
    ),
    Package(
        name="spatial",
        order=2,
        distribution="tinytorch-spatial",
        folder="plugins/spatial",
        package="tinytorch_spatial",
        requires=("nn",),
        title="Convolution and pooling",
        introduces="Conv2d, MaxPool2d, AvgPool2d, Flatten, BatchNorm2d",
        symbols=_symbols(
            nn="Conv2d MaxPool2d AvgPool2d Flatten BatchNorm2d",
            ops="conv2d max_pool2d avg_pool2d batch_norm2d",
        ),
    ),
    Package(
        name="embeddings",
        order=3,
        distribution="tinytorch-embeddings",
        folder="plugins/embeddings",
        package="tinytorch_embeddings",
        requires=("nn",),
        title="Embeddings and tokenization",
        introduces="Embedding, positional encodings, character and byte-level BPE tokenizers",
        symbols=_symbols(
            nn="Embedding SinusoidalPositionalEncoding LearnedPositionalEmbedding",
            ops="embedding",
            text="CharTokenizer BPETokenizer",
        ),
    ),
    Package(
        name="attention",
        order=4,
        distribution="tinytorch-attention",
        folder="plugins/attention",
        package="tinytorch_attention",
        requires=("embeddings",),
        title="Attention and transformers",
        introduces="scaled dot-product attention, MultiHeadAttention, LayerNorm, TransformerBlock, GPT",
        symbols=_symbols(
            nn="MultiHeadAttention LayerNorm FeedForward TransformerBlock GPT",
            ops="scaled_dot_product_attention layer_norm",
        ),
    ),
    Package(
        name="profiling",
        order=5,
        distribution="tinytorch-profiling",
        folder="plugins/profiling",
        package="tinytorch_profiling",
        requires=("nn",),
        title="Profiling and benchmarking",
        introduces="a profiler (time, FLOPs and memory of every op, traces, time by module), model "
        "summaries, benchmarks with confidence intervals",
        symbols=_symbols(profiler="profile record summary benchmark compare"),
    ),
    Package(
        name="compression",
        order=6,
        distribution="tinytorch-compression",
        folder="plugins/compression",
        package="tinytorch_compression",
        requires=("nn",),
        title="Quantization, pruning and distillation",
        introduces="INT8 quantization (observers, integer layers, fake-quant), pruning, distillation, model size",
        symbols=_symbols(
            compression="MinMaxObserver MovingAverageMinMaxObserver PercentileObserver quantize_tensor "
            "dequantize_tensor int8_matmul quantize FakeQuantize prune_l1_unstructured prune_global_unstructured "
            "prune_channels sparsity remove distillation_loss model_size",
            ops="fake_quantize",
        ),
    ),
    Package(
        name="acceleration",
        order=7,
        distribution="tinytorch-acceleration",
        folder="plugins/acceleration",
        package="tinytorch_acceleration",
        requires=("nn",),
        title="Acceleration: compiled training steps",
        introduces="compile: record a training step's kernels once, replay them with no Tensors, "
        "graph or engine work, bitwise equal to eager; a fused Linear-ReLU kernel the replay uses",
        symbols=_symbols(acceleration="compile CompiledStep CompileError", ops="linear_relu"),
    ),
    Package(
        name="generation",
        order=8,
        distribution="tinytorch-generation",
        folder="plugins/generation",
        package="tinytorch_generation",
        requires=("attention", "acceleration"),
        title="Text generation",
        introduces="generate with a key/value cache whose decode step is compiled once and replayed; greedy, "
        "temperature, top-k and top-p sampling",
        symbols=_symbols(generation="generate KVCache top_k_filter top_p_filter sample_tokens", ops="kv_cache_write"),
    ),
    Package(
        name="distributed",
        order=9,
        distribution="tinytorch-distributed",
        folder="plugins/distributed",
        package="tinytorch_distributed",
        requires=("nn",),
        title="Data-parallel training on MPI",
        introduces="init, DistributedDataParallel (bucketed all-reduce overlapping backward), "
        "DistributedSampler, rank-0 checkpoints and logs, tinytorch launch",
        commands=("launch",),
        symbols=_symbols(distributed="init get_rank get_world_size is_main_process barrier all_reduce "
                         "DistributedDataParallel DistributedSampler save log progress"),
    ),
)

#: the verification suite: a plugin of its own that is not a stage
MILESTONES = Package(
    name="milestones",
    distribution="tinytorch-milestones",
    folder="milestones",
    package="tinytorch_milestones",
    requires=("core",),
    title="Milestone verification suite",
    introduces="Perceptron 1957, XOR 1969, MLP 1986, CNN 1998, Transformer 2017, MLPerf 2018, TinyGPT 2020 and their data",
    commands=("milestones", "implement", "grade"),
    milestones=("perceptron", "xor", "mlp", "cnn", "transformer", "mlperf", "tinygpt"),
)

PACKAGES: tuple[Package, ...] = STAGES + (MILESTONES,)
_BY_NAME = {p.name: p for p in PACKAGES}


def get(name: str) -> Package | None:
    return _BY_NAME.get(name)


def stage(name: str) -> Package:
    pkg = _BY_NAME.get(name)
    if pkg is None or not pkg.is_stage:
        raise KeyError(f"unknown stage '{name}'; the stages are {[s.name for s in STAGES]}")
    return pkg


def prerequisites(name: str) -> list[Package]:
    """The package and everything it needs, in install order (core first)."""
    needed: dict[str, Package] = {}
    stack = [name]
    while stack:
        pkg = _BY_NAME[stack.pop()]
        if pkg.name not in needed:
            needed[pkg.name] = pkg
            stack.extend(pkg.requires)
    return sorted(needed.values(), key=lambda p: (p.order if p.is_stage else len(STAGES), p.name))


def install_command(name: str, *more: str) -> str:
    """The exact command, run from the repository root, that installs ``name`` (and ``more``)
    with every prerequisite, in install order."""
    needed = {p.name: p for n in (name, *more) for p in prerequisites(n)}
    ordered = sorted(needed.values(), key=lambda p: (p.order if p.is_stage else len(STAGES), p.name))
    return "pip install " + " ".join(p.folder if p.folder == "." else f"./{p.folder}" for p in ordered)


def package_owning(kind: str, name: str) -> Package | None:
    """The package that owns the command or milestone (``kind``: "commands" or "milestones")
    ``name``; None for a name no package of the project owns."""
    return next((pkg for pkg in PACKAGES if name in getattr(pkg, kind)), None)


def stage_providing(namespace: str, name: str) -> Package | None:
    for pkg in STAGES:
        if pkg.provides(namespace, name):
            return pkg
    return None


def names_in(namespace: str) -> list[str]:
    return [n for pkg in STAGES for n in pkg.symbols.get(namespace, ())]
