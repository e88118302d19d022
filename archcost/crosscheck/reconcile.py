"""Aligning archcost, fvcore and FlopCounterMode module by module, and explaining every difference.

Alignment. archcost has a row per layer call, attributed to a module path (``row.module``); fvcore and
FlopCounterMode report per module, inclusive of submodules. Each tool's inclusive figures are turned
into each module's own work (its figure minus its children's) and that is placed on the nearest module,
itself or an ancestor, that archcost has rows for. So a container's own ``forward`` ops (a residual add)
meet archcost's op rows, and a layer archcost costs as a whole meets the sum of its parts.

Explanation. For every op of every archcost row, its catalogue entry says what each tool counts for that
call (``LayerCost.parts``, evaluated by the crawler on the op's own arguments; ``conventions.py`` names the
rules). A module whose measured figure equals the prediction is explained, and the rules used are cited;
one that differs is a mismatch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from torch import nn

from archcost.cost.record import CostReport, LayerCost
from archcost.crosscheck.conventions import (
    ACTIVATION_OPS,
    FVCORE,
    FVCORE_MHA_FASTPATH,
    MAC_OPS,
    TORCH,
    TORCH_BACKWARD,
    Rule,
    rule_for,
)
from archcost.crosscheck.fvcore_run import FvcoreResult
from archcost.crosscheck.torch_counter import TorchCount
from archcost.errors import InternalError

# -- placing per-module figures on archcost's modules ---------------------------------------------------


def own_counts(inclusive: dict[str, Counter], modules: Iterable[str]) -> dict[str, Counter]:
    """Each module's own figure: its inclusive figure minus its direct children's."""
    names = list(dict.fromkeys(["", *modules]))
    children: dict[str, list[str]] = {}
    for name in names:
        if name:
            children.setdefault(name.rpartition(".")[0], []).append(name)
    own: dict[str, Counter] = {}
    for name in names:
        c = Counter(inclusive.get(name, Counter()))
        for child in children.get(name, ()):
            c.subtract(inclusive.get(child, Counter()))
        own[name] = Counter({k: v for k, v in c.items() if v})
    return own


def module_names(model: nn.Module) -> tuple[list[str], dict[str, str]]:
    """Every path a module is reachable by (shared modules under each of their names), and each path's
    canonical name, the first (``named_modules()``'s, archcost's rows'). FlopCounterMode's module tracker names
    a module by its last path (case 37: a conv shared by ``shared``, ``seq.0`` and ``wrap.layer`` is counted
    under ``wrap.layer``); fvcore by its first."""
    first: dict[int, str] = {}
    for name, m in model.named_modules():
        first.setdefault(id(m), name)
    every = list(model.named_modules(remove_duplicate=False))
    return [n for n, _ in every], {n: first[id(m)] for n, m in every}


def canonical(own: dict[str, Counter], alias: dict[str, str]) -> dict[str, Counter]:
    """``own`` figures keyed by each module's canonical name (``module_names``)."""
    out: dict[str, Counter] = {}
    for name, c in own.items():
        out.setdefault(alias.get(name, name), Counter()).update(c)
    return out


def nearest(path: str, keys: set[str] | dict) -> str | None:
    """``path`` itself or its closest ancestor among ``keys`` ("" is the model)."""
    while True:
        if path in keys:
            return path
        if not path:
            return None
        path = path.rpartition(".")[0]


def place(own: dict[str, Counter], keys: set[str] | dict) -> tuple[dict[str, Counter], Counter]:
    """Sum each module's own figure onto its nearest key; what has no key is returned apart."""
    placed: dict[str, Counter] = {}
    lost: Counter = Counter()
    for name, c in own.items():
        key = nearest(name, keys)
        if key is None:
            lost.update(c)
        else:
            placed.setdefault(key, Counter()).update(c)
    return placed, lost


def fvcore_own_params(fv: FvcoreResult, model: nn.Module) -> dict[str, int]:
    """fvcore's parameter_count, per owning module: its entries for single parameters, summed by owner."""
    out: dict[str, int] = {}
    for name, _ in model.named_parameters():
        owner = name.rpartition(".")[0]
        out[owner] = out.get(owner, 0) + fv.params.get(name, 0)
    return out


# -- predicting each tool's figure from archcost's rows ------------------------------------------------


@dataclass
class Prediction:
    """What the conventions predict a tool counts for some rows; ``None`` when it cannot be predicted."""

    value: int | None = 0
    by_rule: dict[Rule, int] = field(default_factory=dict)
    why_not: str = ""
    guesses: list[str] = field(default_factory=list)

    @property
    def rules(self) -> list[Rule]:
        return list(self.by_rule)

    def add(self, rule: Rule, n: int) -> None:
        if self.value is not None:
            self.value += n
        self.by_rule[rule] = self.by_rule.get(rule, 0) + n

    def fail(self, reason: str) -> None:
        self.value = None
        self.why_not = self.why_not or reason


def predict(row: LayerCost, module: nn.Module | None, training: bool, tool: str, pred: Prediction) -> None:
    """Add what ``tool`` counts for ``row`` to ``pred``: the sum over the ops summed into the row of what the
    op's catalogue entry says the tool counts for that call (``LayerCost.parts``, evaluated by the crawler
    on the op's own arguments). A row a module formula costs whole keeps no ops: the tools count what its
    forward runs, which archcost did not look at, so such a row is predicted only where it runs nothing."""
    if row.parts:
        for part in row.parts:
            n = part.fvcore if tool == FVCORE else part.flop_counter
            rule = rule_for(tool, part.op)
            if n is None:
                pred.fail(f"{row.name}: what {tool} counts for this {part.op} call cannot be predicted")
                pred.by_rule.setdefault(rule, 0)
            else:
                pred.add(rule, n)
        return
    if row.ops or row.macs or row.flops:
        pred.fail(f"{row.name} is costed whole by a module formula; the ops its forward runs were not recorded")


def predict_activations(row: LayerCost, pred: Prediction) -> None:
    """fvcore's ActivationCountAnalysis: output elements of conv, linear, matrix products and einsum, where
    fvcore's trace reaches the op it has a handle for (its flop convention counts it: a convolution with
    string padding becomes ``aten::_convolution_mode``, counted by neither of fvcore's analyses)."""
    for part in row.parts:
        if part.op in ACTIVATION_OPS and pred.value is not None and (part.fvcore != 0 or not part.macs):
            pred.value += part.outputs
    if not row.parts and row.ops:
        pred.fail(f"{row.name} is costed whole by a module formula; its ops' outputs were not recorded")


# -- the reconciliation ----------------------------------------------------------------------------------


@dataclass
class Figure:
    """One tool's figure for one module: measured, predicted by the conventions, and the verdict."""

    measured: int | None
    predicted: int | None
    rules: dict[int, int] = field(default_factory=dict)  # cited rule number -> what it predicts here
    note: str = ""
    #: torch backward only: the module whose subtree's total agrees, where FlopCounterMode's module tracker
    #: charged a branch's backward to a sibling (``TRACKER_NOTE``)
    balanced_in: str | None = None

    @property
    def agrees(self) -> bool:
        if self.balanced_in is not None:
            return True
        return self.measured is None or (self.predicted is not None and self.measured == self.predicted)


@dataclass
class ModuleCheck:
    """One module (a path archcost has rows for; "" is the model's own forward) in all three tools."""

    module: str
    types: list[str]
    macs: int
    flops: int
    params: int
    fvcore: Figure
    torch: Figure
    activations: Figure
    fvcore_params: Figure
    fvcore_unsupported: dict[str, int] = field(default_factory=dict)
    rows: list[str] = field(default_factory=list)  # archcost's row names here, as `archcost table` shows them
    # check --mode train only: archcost's backward MACs here and FlopCounterMode's backward count
    backward_macs: int | None = None
    torch_backward: Figure | None = None

    @property
    def label(self) -> str:
        """The name `archcost table` gives this module's one row (``conv2_x.0/add`` for the residual add a
        block's forward runs), else the module path ("(model)" for the model's own forward)."""
        return self.rows[0] if len(self.rows) == 1 else self.module or "(model)"

    @property
    def mismatches(self) -> list[str]:
        named = (
            ("fvcore", self.fvcore, "conventions predict"),
            ("torch", self.torch, "conventions predict"),
            ("fvcore activations", self.activations, "conventions predict"),
            ("fvcore params", self.fvcore_params, "archcost counts"),
            *((("torch backward", self.torch_backward, "conventions predict"),) if self.torch_backward else ()),
        )
        out = []
        for what, f, against in named:
            if not f.agrees:
                text = f"{what}: measured {f.measured:,}, {against} {_fmt(f.predicted)}"
                out.append(f"{text} ({f.note})" if f.note else text)
        return out

    @property
    def status(self) -> str:
        return "MISMATCH" if self.mismatches else "ok"


def _fmt(n: int | None) -> str:
    return "?" if n is None else f"{n:,}"


@dataclass
class Reconciliation:
    """archcost, fvcore and FlopCounterMode on one model and input, module by module."""

    model: str
    input_shape: tuple[int, ...]
    modules: list[ModuleCheck]
    totals: dict[str, int | None]
    fvcore_error: str | None = None
    torch_error: str | None = None
    fvcore_unsupported: dict[str, int] = field(default_factory=dict)
    archcost_unsupported: list[str] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)  # every rule cited, numbered from 1 in this order
    findings: list[str] = field(default_factory=list)
    backward_error: str | None = None  # check --mode train: why FlopCounterMode's backward could not run

    @property
    def backward(self) -> bool:
        """Whether this reconciliation compares backward counts too (``check --mode train``)."""
        return any(m.torch_backward is not None for m in self.modules) or self.backward_error is not None

    @property
    def mismatches(self) -> list[str]:
        out = [f"{m.label}: {x}" for m in self.modules for x in m.mismatches]
        return out + [f for f in self.findings if f.startswith("MISMATCH")]

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def rule_totals(self) -> dict[int, int]:
        """What each cited rule predicts over the whole model (rule number -> count)."""
        out: dict[int, int] = {}
        for m in self.modules:
            for f in (m.fvcore, m.torch, *([m.torch_backward] if m.torch_backward else [])):
                for i, n in f.rules.items():
                    out[i] = out.get(i, 0) + n
        return out

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "input_shape": list(self.input_shape),
            "ok": self.ok,
            "totals": self.totals,
            "fvcore_error": self.fvcore_error,
            "torch_error": self.torch_error,
            "fvcore_unsupported": self.fvcore_unsupported,
            **({"backward_error": self.backward_error} if self.backward_error else {}),
            "archcost_unsupported": self.archcost_unsupported,
            "findings": self.findings,
            "mismatches": self.mismatches,
            "conventions": [
                {
                    "id": i,
                    "tool": r.tool,
                    "ops": list(r.ops),
                    "reported_as": r.tool_op,
                    "rule": r.text,
                    "source": r.source,
                }
                for i, r in enumerate(self.rules, 1)
            ],  # fmt: skip
            "modules": [
                {
                    "module": m.module,
                    "rows": m.rows,
                    "types": m.types,
                    "macs": m.macs,
                    "flops": m.flops,
                    "params": m.params,
                    "fvcore": asdict(m.fvcore),
                    "torch": asdict(m.torch),
                    "fvcore_activations": asdict(m.activations),
                    "fvcore_params": asdict(m.fvcore_params),
                    "fvcore_unsupported": m.fvcore_unsupported,
                    **(
                        {"backward_macs": m.backward_macs, "torch_backward": asdict(m.torch_backward)}
                        if m.torch_backward
                        else {}
                    ),
                    "status": m.status,
                    "mismatches": m.mismatches,
                }
                for m in self.modules
            ],
        }


def _module_at(model: nn.Module, path: str) -> nn.Module | None:
    try:
        return model.get_submodule(path)
    except AttributeError:
        return None


def reconcile(report: CostReport, model: nn.Module, fv: FvcoreResult, tc: TorchCount) -> Reconciliation:
    """Align the three tools on ``model`` (the model ``report`` analysed) and explain each difference."""
    rows_at: dict[str, list[LayerCost]] = {}
    for r in report.layers:
        rows_at.setdefault(r.module, []).append(r)
    rows_at.setdefault("", [])
    keys = dict.fromkeys(rows_at)
    names, alias = module_names(model)

    def placed(inclusive):
        return place(canonical(own_counts(inclusive, names), alias), keys)

    fv_flops, fv_lost = placed(fv.flops) if fv.ok else ({}, Counter())
    fv_acts, acts_lost = placed(fv.activations) if fv.ok else ({}, Counter())
    fv_unsup, _ = placed(fv.unsupported) if fv.ok else ({}, Counter())
    t_flops, t_lost = placed(tc.flops) if tc.ok else ({}, Counter())
    p_fv, _ = place({k: Counter(n=v) for k, v in fvcore_own_params(fv, model).items()}, keys)

    cited: list[Rule] = []
    modules: list[ModuleCheck] = []
    for key, rows in rows_at.items():
        preds = {FVCORE: Prediction(), TORCH: Prediction()}
        acts = Prediction()
        fused = FVCORE_MHA_FASTPATH.tool_op in fv_unsup.get(key, ())
        for r in rows:
            module = _module_at(model, r.module) if r.kind == "module" else None
            if fused and r.type == "multi_head_attention_forward":
                preds[FVCORE].add(FVCORE_MHA_FASTPATH, 0)  # fvcore ran the fused kernel: no handle, and no
                predict(r, module, report.training, TORCH, preds[TORCH])  # activations of linear/bmm either
                continue
            for tool, pred in preds.items():
                predict(r, module, report.training, tool, pred)
            predict_activations(r, acts)
        macs = sum(r.macs for r in rows)
        flops = sum(r.flops for r in rows)

        fv_measured = sum(fv_flops.get(key, Counter()).values()) if fv.ok else None
        t_measured = sum(t_flops.get(key, Counter()).values()) if tc.ok else None
        params = sum(r.params for r in rows)
        modules.append(
            ModuleCheck(
                module=key,
                types=list(dict.fromkeys(r.type for r in rows)),
                macs=macs,
                flops=flops,
                params=params,
                fvcore=_figure(fv_measured, preds[FVCORE], cited, busy=bool(macs or flops)),
                torch=_figure(t_measured, preds[TORCH], cited, busy=bool(macs or flops)),
                activations=Figure(
                    sum(fv_acts.get(key, Counter()).values()) if fv.ok else None, acts.value, note=acts.why_not
                ),
                fvcore_params=Figure(p_fv.get(key, Counter())["n"] if fv.ok else None, params),
                fvcore_unsupported=dict(sorted(fv_unsup.get(key, Counter()).items())),
                rows=[r.name for r in rows],
            )
        )
    _explain_shared_params(modules, model)
    # The model's own row only matters when something lands on it.
    modules = [m for m in modules if m.module or rows_at[""] or m.fvcore.measured or m.torch.measured or m.mismatches]

    findings = []
    if fv.error:
        findings.append(f"fvcore could not analyse the model: {fv.error}")
    if tc.error:
        findings.append(f"FlopCounterMode could not run the model: {tc.error}")
    for tool, lost in (("fvcore", fv_lost + acts_lost), ("FlopCounterMode", t_lost)):
        if lost:
            findings.append(f"MISMATCH: {tool} counted {dict(lost)} in modules archcost has no row for")
    if report.unsupported:
        findings.append(
            "archcost has no formula for (counted 0): " + ", ".join(f"{u.layer}: {u.op}" for u in report.unsupported)
        )
    if len(set(alias.values())) < len(alias) and tc.ok:  # a reused module: the tracker's forward attribution
        if _totals_agree(m.torch for m in modules):
            for m in modules:
                if not m.torch.agrees:
                    m.torch.balanced_in = ""
                    m.torch.note = f"attribution within the model (its total agrees): {SHARED_FORWARD_NOTE}"
                    findings.append(f"torch: {m.module or 'the model'}: {m.torch.note}")
    totals = {
        "macs": report.totals["macs"],
        "flops": report.totals["flops"],
        "params": report.totals["params"],
        "fvcore": fv.total_flops() if fv.ok else None,
        "fvcore_predicted": _sum(m.fvcore.predicted for m in modules),
        "fvcore_activations": fv.total_activations() if fv.ok else None,
        "fvcore_activations_predicted": _sum(m.activations.predicted for m in modules),
        "fvcore_params": fv.params.get("") if fv.params else None,
        "torch": tc.total() if tc.ok else None,
        "torch_predicted": _sum(m.torch.predicted for m in modules),
    }
    unsup: Counter[str] = Counter()
    for m in modules:
        unsup.update(m.fvcore_unsupported)
    return Reconciliation(
        model=report.model,
        input_shape=tuple(report.input_shape),
        modules=modules,
        totals=totals,
        fvcore_error=fv.error,
        torch_error=tc.error,
        fvcore_unsupported=dict(sorted(unsup.items())),
        archcost_unsupported=[f"{u.layer}: {u.op}" for u in report.unsupported],
        rules=cited,
        findings=findings,
    )


def _figure(measured: int | None, pred: Prediction, cited: list[Rule], *, busy: bool) -> Figure:
    """A tool's figure with the numbers (1-based, in ``cited``) of the rules that predict it; rules are
    cited wherever some tool counts work."""
    ids = {}
    if measured or pred.value or busy:
        for rule, n in pred.by_rule.items():
            if rule not in cited:
                cited.append(rule)
            ids[cited.index(rule) + 1] = n
    return Figure(measured, pred.value, ids, "; ".join(filter(None, [pred.why_not, *pred.guesses])))


def _totals_agree(figs: Iterable[Figure]) -> bool:
    """Whether every figure has both a measured and a predicted count, and their totals are equal."""
    figs = list(figs)
    measured = _sum(f.measured for f in figs)
    return measured is not None and measured == _sum(f.predicted for f in figs)


def _sum(values: Iterable[int | None]) -> int | None:
    total = 0
    for v in values:
        if v is None:
            return None
        total += v
    return total


def _explain_shared_params(modules: list[ModuleCheck], model: nn.Module) -> None:
    """A parameter shared by several modules: archcost counts it at the first layer that uses it, fvcore
    at the module whose name comes first. Their totals must still agree."""
    shared = len(list(model.named_parameters(remove_duplicate=False))) != len(list(model.named_parameters()))
    if not shared:
        return
    total_fv = sum(m.fvcore_params.measured or 0 for m in modules)
    total_arch = sum(m.params for m in modules)
    if total_fv != total_arch:
        return
    for m in modules:
        f = m.fvcore_params
        if f.measured is not None and f.measured != f.predicted:
            f.predicted = f.measured
            f.note = "shared parameter: archcost counts it at its first use, fvcore at its first owner"


# -- backward (check --mode train) -----------------------------------------------------------------------


def predict_backward(row: LayerCost, module: nn.Module | None, pred: Prediction) -> None:
    """Add what FlopCounterMode counts for ``row``'s backward (a training analysis's row) to ``pred``."""
    from archcost.crosscheck.conventions import OpView, rule_for

    kinds = set(row.ops)
    mac_kinds = sorted(kinds & set(MAC_OPS))
    for op in sorted(kinds - set(mac_kinds)):
        pred.add(rule_for(TORCH_BACKWARD, op), 0)
    if not mac_kinds:
        return
    rules = {rule_for(TORCH_BACKWARD, op) for op in mac_kinds}
    if len(rules) > 1:
        pred.fail(f"{row.name} runs {', '.join(mac_kinds)}; the row keeps one backward count for them all")
        return
    groups, weight_grad = 1, False
    if any(op.startswith("conv") for op in mac_kinds):
        weight = getattr(module, "weight", None)
        module_groups = getattr(module, "groups", None)
        if module is None or not isinstance(module_groups, int) or weight is None:
            pred.fail(f"{row.name}: a convolution outside a conv module: its groups are not kept in the row")
            return
        groups, weight_grad = module_groups, bool(weight.requires_grad)
    view = OpView(mac_kinds[0], row.macs, row.flops, 0, 0, 0, backward_macs=row.backward_macs or 0,
                  groups=groups, weight_grad=weight_grad)  # fmt: skip
    rule = rules.pop()
    if rule.count is None:  # every TORCH_BACKWARD rule has one
        raise InternalError(f"the backward rule for {mac_kinds[0]} ({rule.tool_op}) has no count")
    pred.add(rule, rule.count(view))


def reconcile_backward(rec: Reconciliation, report: CostReport, model: nn.Module, tc: TorchCount) -> None:
    """Add FlopCounterMode's backward count to each module of ``rec``, predicted from ``report`` (a
    training analysis with backward MACs, ``archcost.cost.training``) by the ``TORCH_BACKWARD`` rules."""
    names, alias = module_names(model)
    by_key = {m.module: m for m in rec.modules}
    keys = dict.fromkeys([*by_key, ""])
    measured, lost = place(canonical(own_counts(tc.flops, names), alias), keys) if tc.ok else ({}, Counter())
    preds: dict[str, Prediction] = {k: Prediction() for k in keys}
    macs: dict[str, int] = dict.fromkeys(keys, 0)
    for r in report.layers:
        key = nearest(r.module, keys)
        if key is None:
            continue
        module = _module_at(model, r.module) if r.kind == "module" else None
        predict_backward(r, module, preds[key])
        macs[key] += r.backward_macs or 0
    root = None  # the model's own forward when no row of archcost's is attributed to it
    for key in keys:
        m = by_key.get(key)
        got = sum(measured.get(key, Counter()).values()) if tc.ok else None
        if m is None:
            if got or preds[key].value or macs[key]:
                root = _figure(got, preds[key], rec.rules, busy=bool(macs[key]))
            continue
        m.backward_macs = macs[key]
        m.torch_backward = _figure(got, preds[key], rec.rules, busy=bool(macs[key]))
    shared = len(set(alias.values())) < len(alias)  # a module reachable by several paths (reused)
    _balance_backward(rec, {"": root} if root is not None else None, shared=shared)
    if root is not None:  # the tracker may have charged the root's count to a module: balanced above
        got, want = root.measured, root.predicted
        rec.findings.append(
            f"the model's own forward: torch backward {_fmt(got)}, {root.note}"
            if root.balanced_in is not None
            else f"the model's own forward: torch backward {_fmt(got)}, as the conventions predict"
            if root.agrees
            else f"MISMATCH: the model's own forward: torch backward {_fmt(got)}, conventions predict {_fmt(want)}"
        )
    if tc.error:
        rec.backward_error = tc.error
        rec.findings.append(f"FlopCounterMode could not run the backward: {tc.error}")
    if lost:
        rec.findings.append(f"MISMATCH: FlopCounterMode's backward counted {dict(lost)} in modules with no row")
    if report.unsupported:
        ops = sorted({u.op for u in report.unsupported if u.reason.startswith("no backward cost formula")})
        if ops:
            rec.findings.append("archcost has no backward formula for (counted 0): " + ", ".join(ops))
    rec.totals.update(
        backward_macs=report.totals.get("backward_macs"),
        backward_flops=report.totals.get("backward_flops"),
        torch_backward=tc.total() if tc.ok else None,
        torch_backward_predicted=_sum(
            [m.torch_backward.predicted for m in rec.modules if m.torch_backward]
            + [preds[""].value if "" not in by_key else 0]
        ),
    )


#: Why FlopCounterMode's forward counts of a model that reuses a module are not per module.
SHARED_FORWARD_NOTE = (
    "the model reuses one module instance (a position encoding shared by several blocks, ModuleList([block] * n)); "
    "FlopCounterMode's module tracker (torch/utils/module_tracker.py) keeps one name and one set of parents per "
    "instance, from its last path, so every call of it is counted under that path's ancestors, whichever block "
    "made the call; per module the figures are not comparable, the model's total is"
)


#: Why FlopCounterMode's backward counts of a model that reuses a module are not per module.
SHARED_NOTE = (
    "the model calls one module instance several times (a shared layer, ModuleList([block] * n)); "
    "FlopCounterMode's module tracker (torch/utils/module_tracker.py) keeps one entry per instance, named by its "
    "last path, so the backward windows of its calls overlap and their ops are charged to whichever call's "
    "window is open; per module the figures are not comparable, the model's total is"
)


#: Why FlopCounterMode's backward count of a module can differ from its own work while its parent's agrees.
TRACKER_NOTE = (
    "FlopCounterMode's module tracker (torch/utils/module_tracker.py) enters a module in backward when the "
    "gradient of its output is ready and leaves it only when the gradient of its input is complete "
    "(register_multi_grad_hook on the inputs); where that input also feeds another branch (a residual "
    "block's shortcut conv), the other branch's backward ops are charged to this module too, and the parent's "
    "own count (inclusive minus children) is short by as much"
)


def _balance_backward(rec: Reconciliation, extra: dict[str, Figure] | None = None, *, shared: bool = False) -> None:
    """Explain backward figures that differ module by module but add up in the smallest enclosing module
    by ``TRACKER_NOTE``; the difference stays visible in the figures. ``extra``: figures of paths with no
    module row (the model's own forward, ""). ``shared``: the model reuses a module (one instance under
    several paths, or called several times): the tracker's windows of its calls overlap in backward
    (``SHARED_NOTE``), so where the whole model's total agrees, its figures are compared as that total."""
    figs = {m.module: m.torch_backward for m in rec.modules if m.torch_backward is not None}
    figs.update(extra or {})
    explained = []
    whole = _totals_agree(figs.values())
    for key, f in figs.items():
        if f.agrees or f.measured is None:
            continue
        scope: str | None = key
        while scope is not None:
            if _tracker_signature(figs, scope):
                explained.append((f, scope))
                break
            scope = scope.rpartition(".")[0] if scope else None
        else:
            if shared and whole:
                f.balanced_in = ""
                f.note = f"attribution within the model (its total agrees): {SHARED_NOTE}"
                rec.findings.append(f"torch backward of {key or 'the model'}: {f.note}")
    for f, scope in explained:
        f.balanced_in = scope
        f.note = f"attribution within {scope or 'the model'} (its total agrees): {TRACKER_NOTE}"
    if explained:
        scopes = sorted({s or "the model" for _, s in explained})
        rec.findings.append(
            f"torch backward: {len(explained)} module figure(s) differ inside {', '.join(scopes[:6])}"
            + (", ..." if len(scopes) > 6 else "")
            + f", whose totals agree: {TRACKER_NOTE}"
        )


def _tracker_signature(figs: dict[str, Figure], scope: str) -> bool:
    """Whether the backward figures inside module ``scope`` show the module tracker's misattribution: they
    add up to what the conventions predict, and ``scope``'s own count is short (what its children gained)."""
    inside = [g for k, g in figs.items() if not scope or k == scope or k.startswith(scope + ".")]
    own = figs.get(scope)
    if own is None or own.measured is None or own.predicted is None or own.measured >= own.predicted:
        return False
    return _totals_agree(inside)
