"""Copy recurrent layers to and from PyTorch: torch.nn.RNN / LSTM / GRU ⇄ `tinygrad_rnn.nn.Recurrent`.

Both sides name the parameters alike (`weight_ih_l{layer}{_reverse}` in torch, `cells[layer * 2 +
direction].weight_ih` here) and order the gates alike, so the weights copy over unchanged. The
`Recurrent` built here is always batch-first: give it (N, T, D) whatever torch's `batch_first` was.
torch is imported only when these functions run; the package does not need it otherwise.

Which cell equals which torch module is the cells' own business, so this file names none: a cell
class that equals one declares `torch_equivalent = "LSTM"` (the torch.nn class name), a static
`options_from_torch(module)` giving its options for that module, and `torch_options()` giving torch's
options for a built cell (raising ConfigError where the cell's options have no torch equal).
"""
import numpy as np

from . import backend
from .errors import ConfigError
from .registry import cells

_TENSORS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def from_torch(module):
    """An equal `Recurrent` from a torch.nn.RNN, LSTM or GRU (float64 when torch's weights are)."""
    import torch

    from .nn.recurrent import Recurrent
    if module.mode not in ("RNN_TANH", "RNN_RELU", "LSTM", "GRU") or not isinstance(module, torch.nn.RNNBase):
        raise ConfigError(f"from_torch: expected torch.nn.RNN, LSTM or GRU, got {type(module).__name__}")
    if getattr(module, "proj_size", 0):
        raise ConfigError("from_torch: LSTM with proj_size has no tinygrad_rnn cell; use proj_size=0")
    cell = _cell_for(type(module).__name__)
    options = cell.options_from_torch(module)
    if not module.bias:
        raise ConfigError("from_torch: every tinygrad_rnn cell has biases; build the torch module with bias=True")
    layer = Recurrent(cell, module.input_size, module.hidden_size, module.num_layers, module.bidirectional,
                      module.dropout, **options)
    dtype = np.float64 if module.weight_ih_l0.dtype == torch.float64 else np.float32
    layer.to(dtype=dtype)
    for index, cell_module in enumerate(layer.cells):
        suffix = _suffix(index, layer.num_directions)
        for name in _TENSORS:
            source = getattr(module, name + suffix).detach().cpu().numpy().astype(dtype)
            target = getattr(cell_module, name)
            target.data = backend.convert(source, target.backend)
    return layer


def to_torch(layer):
    """A batch-first torch.nn.RNN, LSTM or GRU equal to `layer` (a Recurrent of rnn, lstm or gru cells)."""
    import torch

    name = getattr(layer.cell_class, "plugin_name", layer.cell_class.__name__)
    first = layer.cells[0]
    equivalent = getattr(layer.cell_class, "torch_equivalent", None)
    if equivalent is None:
        raise ConfigError(f"to_torch: torch has no equal of cell {name!r}; cells that have one: "
                          f"{', '.join(n for n in cells.names() if getattr(cells.get(n), 'torch_equivalent', None))}")
    try:
        options = first.torch_options()
    except ConfigError as e:
        raise ConfigError(f"to_torch: cell {name!r}: {e}") from None
    module = getattr(torch.nn, equivalent)(input_size=layer.input_size, hidden_size=layer.hidden_size,
                                           num_layers=layer.num_layers, bidirectional=layer.num_directions == 2,
                                           dropout=layer.dropout, batch_first=True, **options)
    if layer.recurrent_dropout or any(t is not None for t in layer.input_transforms):
        raise ConfigError("to_torch: recurrent_dropout and input_transforms have no torch.nn.RNN equivalent; "
                          "remove them first")
    dtype = torch.float64 if first.weight_hh.dtype == np.float64 else torch.float32
    module.to(dtype)
    with torch.no_grad():
        for index, cell_module in enumerate(layer.cells):
            suffix = _suffix(index, layer.num_directions)
            for tensor_name in _TENSORS:
                value = getattr(cell_module, tensor_name).numpy()
                getattr(module, tensor_name + suffix).copy_(torch.from_numpy(value))
    return module


def _cell_for(torch_name):
    """The registered cell class that declares itself equal to torch.nn.<torch_name>."""
    for name in cells.names():
        if getattr(cells.get(name), "torch_equivalent", None) == torch_name:
            return cells.get(name)
    raise ConfigError(f"from_torch: no registered cell declares torch_equivalent = {torch_name!r}")


def _suffix(index, num_directions):
    """torch's name ending for cells[index]: `_l{layer}` plus `_reverse` for the backward direction."""
    layer, direction = divmod(index, num_directions)
    return f"_l{layer}" + ("_reverse" if direction else "")
