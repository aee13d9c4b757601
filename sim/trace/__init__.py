"""HDF5 trace format: schema, writer, validating streaming reader. Never imports torch."""

from sim.errors import TraceFormatError
from sim.trace.reader import Trace, open_trace
from sim.trace.schema import FORMAT_VERSION, LayerSpec, NeuronModel, TraceMeta, qt_activation_bits
from sim.trace.writer import TraceWriter, pack_spikes

__all__ = [
    "FORMAT_VERSION", "LayerSpec", "NeuronModel", "Trace", "TraceFormatError", "TraceMeta",
    "TraceWriter", "open_trace", "pack_spikes", "qt_activation_bits",
]
