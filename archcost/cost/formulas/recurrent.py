"""Recurrent layers: ``nn.RNN``, ``nn.LSTM``, ``nn.GRU`` (any layers, directions, biases, ``proj_size``,
packed or padded input) and their cells, from the ops they run (``torch.lstm``, ``torch.gru``,
``torch.rnn_tanh``, ``torch.rnn_relu``, ``torch.lstm_cell``, ...).

Every (time step, batch element) position of every layer and direction multiplies its input by ``W_ih``
(``G*H x I``) and its previous hidden state by ``W_hh`` (``G*H x P``), and an LSTM with ``proj_size`` its new
hidden state by ``W_hr`` (``P x H``), with ``G`` = 4 gates (LSTM), 3 (GRU), 1 (RNN). So the MACs are the
number of positions times the elements of all weight matrices, which is how PyTorch's own decomposition
runs them (one ``mm`` per matrix per position: FlopCounterMode on the meta device counts the same; on the
CPU it counts 0 when oneDNN runs the LSTM). FLOPs: 2 per MAC, 1 per bias element per position, the gate
arithmetic per hidden unit (``lstm_cell``, ``gru_cell``, ``rnn_cell`` in ``units.FLOPS_PER_ELEMENT``), and in
training the dropout multiply between layers.
"""

from __future__ import annotations

import math

import torch

from archcost.cost._registry import Cost, register_cost
from archcost.cost.formulas._args import arg, tensor_arg
from archcost.cost.formulas._tools import FC_RECURRENT
from archcost.units import per_element

_GATE_FLOPS = {"lstm": "lstm_cell", "gru": "gru_cell", "rnn_tanh": "rnn_cell", "rnn_relu": "rnn_cell"}


def recurrent_cost(
    kind: str,
    positions: int,
    weights: list[tuple[int, ...]],
    *,
    hidden: int,
    layers_directions: int,
    dropout_elements: int = 0,
) -> Cost:
    """Cost of a recurrent layer stack.

    ``positions``: time steps x batch (the rows of a packed sequence); ``weights``: shapes of every weight
    matrix and bias vector of every layer and direction; ``hidden``: H (units per gate);
    ``layers_directions``: layers x directions; ``dropout_elements``: elements the inter-layer dropout
    multiplies (training only).
    """
    macs = positions * sum(math.prod(s) for s in weights if len(s) == 2)
    bias = positions * sum(math.prod(s) for s in weights if len(s) == 1)
    gates = positions * layers_directions * hidden * per_element(_GATE_FLOPS[kind])
    return Cost(macs=macs, flops=2 * macs + bias + gates + dropout_elements * per_element("dropout_train"))


def _stack(kind: str):
    def cost(args: tuple, kwargs: dict, out) -> Cost:
        # padded: (input, hx, params, has_biases, num_layers, dropout, train, bidirectional, batch_first)
        # packed: (data, batch_sizes, hx, params, has_biases, num_layers, dropout, train, bidirectional)
        packed = isinstance(args[1], torch.Tensor) and not args[1].is_floating_point()
        x = args[0]
        first = 3 if packed else 2
        params = args[first]
        num_layers, dropout, train, bidirectional = args[first + 2 : first + 6]
        positions = math.prod(x.shape[:-1])  # (T, B), (B, T) or (T,) unbatched; packed: sum of batch sizes
        dirs = 2 if bidirectional else 1
        w_hh = params[1]
        hidden = w_hh.shape[0] // {"lstm": 4, "gru": 3}.get(kind, 1)
        out_features = (w_hh.shape[1]) * dirs  # P (proj_size or H) per direction
        dropped = positions * out_features * (num_layers - 1) if train and dropout > 0 else 0
        return recurrent_cost(
            kind,
            positions,
            [tuple(p.shape) for p in params],
            hidden=hidden,
            layers_directions=num_layers * dirs,
            dropout_elements=dropped,
        )

    return cost


def _cell(kind: str):
    def cost(args: tuple, kwargs: dict, out) -> Cost:
        # (input, hx, w_ih, w_hh, b_ih=None, b_hh=None)
        x = tensor_arg(args, kwargs, 0, "input")
        names = enumerate(("w_ih", "w_hh", "b_ih", "b_hh"), start=2)
        ws = [tensor_arg(args, kwargs, i, n) for i, n in names if arg(args, kwargs, i, n) is not None]
        hidden = ws[1].shape[0] // {"lstm": 4, "gru": 3}.get(kind, 1)
        positions = math.prod(x.shape[:-1])
        return recurrent_cost(kind, positions, [tuple(w.shape) for w in ws], hidden=hidden, layers_directions=1)

    return cost


for _kind in _GATE_FLOPS:
    register_cost(_kind, flop_counter=FC_RECURRENT)(_stack(_kind))  # fvcore: no aten::lstm ... handle, 0
    register_cost(f"{_kind}_cell", flop_counter=FC_RECURRENT)(_cell(_kind))
