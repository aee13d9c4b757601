"""The one registry of architecture kinds: everything that lists architectures reads it.

An :class:`ArchKind` row names an architecture and gives its component slots (name ->
component class), its mapping options and their validators, the simulator class that replays
it, the closed-form module that predicts its counts (``predict`` and ``ideal_overrides``, the
:class:`sim.analytic.closed_form.ClosedForm` protocol), the non-ideal causes its closed form
names with their texts, and its documentation page. Simulator and closed form are named by
import path and loaded on demand, so reading the registry imports no engine, simpy or numba.

Adding an architecture is adding a row here (docs/extending.md).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from sim.arch.fields import MESH_COORD, POS, Kind, boolean, boolean_or_names, choice


#: What a replay runs: the SNN's spikes, or the ANN twin's activations.
MODES = ("snn", "ann")


@dataclass(frozen=True)
class Capability:
    """A mapping option the hardware may or may not offer: the spec's value says what the
    hardware can do; the mapper may use it or fall back to ``off`` (never the reverse: a spec
    whose value is ``off`` describes hardware without the capability)."""

    off: object

    def values(self, spec_value) -> tuple:
        return (self.off,) if spec_value == self.off else (spec_value, self.off)


@dataclass(frozen=True)
class PerLayer:
    """A mapping option chosen layer by layer: the option's value is ``true`` (every layer),
    ``false`` (none) or the list of layers it applies to. The mapper tries none and every
    layer, then the per-layer choice of the cheaper, which is the best of the 2^layers
    assignments when a layer's counts depend only on its own choice (docs/mapping.md)."""


@dataclass(frozen=True)
class ArchKind:
    """One architecture: see the module docstring. ``optional_components``: slots a spec may
    leave out."""

    name: str
    components: dict[str, str]
    mapping: dict[str, Kind]
    #: The mapper's search space (sim.replay.mapper): mapping options that change counts or
    #: cycles but not the hardware, each with its candidate values (a tuple) or a Capability.
    #: Every other mapping option (zero skipping, cost conventions, I/O position, overflow
    #: policy) and every component parameter is hardware, which the mapper never changes.
    mapping_space: dict
    simulator: str        # "module:Class", the Architecture protocol (sim.architectures.base)
    closed_form: str      # module with predict(...) and ideal_overrides(...)
    causes: dict[str, str]
    doc: str
    optional_components: tuple[str, ...] = ()
    summary: str = field(default="", compare=False)

    def simulator_class(self):
        """The class that replays this architecture (imports the engine)."""
        module, cls = self.simulator.split(":")
        return getattr(importlib.import_module(module), cls)

    def closed_form_module(self):
        """The module with this architecture's closed form (numpy only)."""
        return importlib.import_module(self.closed_form)


#: Every architecture, in the order ``--arch all`` runs them.
ARCH_KINDS: tuple[ArchKind, ...] = (
    ArchKind(
        name="memory_hierarchy",
        summary="DRAM <-> global buffer <-> PE array with register files",
        components={"dram": "dram", "global_buffer": "sram", "register_file": "regfile", "pe_array": "pe_array"},
        mapping={"zero_skipping": boolean(), "loop_order": choice("layer_major", "time_major"),
                 "snn_weight_tiling": boolean_or_names()},
        mapping_space={"loop_order": ("layer_major", "time_major"), "snn_weight_tiling": PerLayer()},
        simulator="sim.architectures.memory_hierarchy:MemoryHierarchy",
        closed_form="sim.analytic.memory_hierarchy",
        causes={
            "weights_refetched_per_step_nonresident":
                "buffer spill: weights that do not fit are fetched again every time step",
            "weights_refetched_per_pixel_pass_nonresident":
                "buffer spill: weights that do not fit are fetched again every pixel pass",
            "membranes_per_step_nonresident": "buffer spill: membranes that do not fit go to DRAM and back every step",
            "io_events_spilled": "buffer spill: input/output events that do not fit beside each other",
            "spikes_reread_per_weight_tile":
                "weight tiling: each step's input spikes are read again for every weight tile",
        },
        doc="docs/architectures/memory_hierarchy.md",
    ),
    ArchKind(
        name="neuromorphic",
        summary="Loihi-like cores on a mesh NoC, address-event packets, time-step barriers",
        components={"noc": "noc", "core": "core", "synapse_memory": "synapse_memory",
                    "neuron_memory": "neuron_memory", "dram": "dram"},
        optional_components=("dram",),  # without it, a model that does not fit the mesh is an error
        mapping={"partition": choice("channel_major", "spatial"), "placement": choice("row_major", "nearest"),
                 "multicast": boolean(), "weight_sharing": boolean(), "io_x": MESH_COORD, "io_y": MESH_COORD,
                 # behaviour of the chip, not mapping choices: never in mapping_space
                 "readout_every_step": boolean(), "direct_input": choice("events", "bias"),
                 "neuron_updates": choice("all", "active"), "update_overlap": boolean(),
                 "schedule": choice("pipelined", "aligned")},
        mapping_space={"partition": ("channel_major", "spatial"), "placement": ("row_major", "nearest"),
                       "multicast": Capability(False), "weight_sharing": Capability(False)},
        simulator="sim.architectures.neuromorphic:Neuromorphic",
        closed_form="sim.analytic.neuromorphic",
        causes={
            "weights_paged_per_sample": "paging: several chip configurations, weights paged in every sample",
            "events_between_configurations": "paging: events between chip configurations go through DRAM",
        },
        doc="docs/architectures/neuromorphic.md",
    ),
    ArchKind(
        name="spatial_dataflow",
        summary="every layer on its own PE group, weights resident, a layer pipeline",
        components={"dram": "dram", "local_memory": "sram", "interconnect": "interconnect", "pe_array": "pe_array"},
        mapping={"delivery": choice("per_synapse", "multicast"), "per_hop": boolean(),
                 "neuron_ops": choice("paper", "hardware"), "zero_skipping": boolean(),
                 "pe_allocation": choice("weights", "balanced"), "on_overflow": choice("error", "fold"),
                 "stage_buffer": POS},
        mapping_space={"delivery": Capability("per_synapse"), "pe_allocation": ("weights", "balanced"),
                       "stage_buffer": (1, 2, 4)},
        simulator="sim.architectures.spatial_dataflow:SpatialDataflow",
        closed_form="sim.analytic.spatial_dataflow",
        causes={
            "weights_reloaded_per_sample_folded": "folding: the model exceeds the chip, weights reloaded every sample",
            "fold_boundary": "folding: outputs between folds go through DRAM",
            "hops_between_groups": "placement hops: operand movements pay the distance between PE groups",
        },
        doc="docs/architectures/spatial_dataflow.md",
    ),
    ArchKind(
        name="systolic_array",
        summary="SCALE-Sim-like rows x cols array, ifmap/filter/ofmap buffers, WS/OS/IS GEMM folds",
        components={"dram": "dram", "ifmap_buffer": "sram", "filter_buffer": "sram", "ofmap_buffer": "sram",
                    "pe_array": "pe_array"},
        mapping={"dataflow": choice("ws", "os", "is"), "layer_io": choice("dram", "on_chip"),
                 "double_buffered": boolean(), "skip_zero_rows": boolean()},
        mapping_space={"dataflow": ("ws", "os", "is"), "skip_zero_rows": Capability(False)},
        simulator="sim.architectures.systolic_array:SystolicArray",
        closed_form="sim.analytic.systolic_array",
        causes={
            "operand_refetched_per_sweep":
                "buffer spill: an input or weight working set larger than its buffer's live part is fetched again every sweep",
            "weights_refetched_per_step":
                "buffer spill: weights larger than the filter buffer's live part are fetched again every time step",
            "membranes_per_step_dram": "buffer spill: membranes that do not fit the ofmap buffer go to DRAM and back every step",
            "activations_spilled":
                "buffer spill (layer_io: on_chip): an output larger than the ifmap or ofmap buffer goes through DRAM",
        },
        doc="docs/architectures/systolic_array.md",
    ),
)

ARCHITECTURES: dict[str, ArchKind] = {k.name: k for k in ARCH_KINDS}

#: Every non-ideal cause any closed form names, with its text.
CAUSES: dict[str, str] = {c: text for k in ARCH_KINDS for c, text in k.causes.items()}


def arch_kind(name: str) -> ArchKind:
    """The row of architecture ``name``; KeyError naming the known ones."""
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise KeyError(f"unknown architecture {name!r} (known: {', '.join(ARCHITECTURES)})") from None


def architecture_names(arch: str = "all") -> list[str]:
    """``all`` -> every architecture in registry order; else ``[arch]``."""
    return [k.name for k in ARCH_KINDS] if arch == "all" else [arch]
