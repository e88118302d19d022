"""Predicted latency (issue 28): device profiles of fitted per-kind latency rules, and per-layer predictions.

Downstream of ``cost`` (the features: each row's kind, FLOPs and bytes) and ``profiling`` (the timer), upstream
of ``report`` and ``commands``. ``calibrate`` times a designed kernel set and fits the rules (``fit``) into a
``DeviceProfile`` (``profile``: the versioned JSON, its loader and ``check_matches``); ``predict`` prices a
model's rows with one (``model``). The per-kernel idea is nn-Meter's (MobiSys 2021); the rule is the roofline
(Williams et al. 2009) plus a per-call overhead.
"""

from archcost.predict.calibrate import Kernel, calibrate, kernels
from archcost.predict.fit import FitError, Rule, fit_rule
from archcost.predict.kinds import KINDS, kind_of
from archcost.predict.model import PredictedLayer, Prediction, predict, predict_report
from archcost.predict.profile import (
    SCHEMA_VERSION,
    CalibrationPoint,
    DeviceProfile,
    KindRule,
    ProfileError,
    ProfileMismatchError,
    check_matches,
    load_profile,
    profile_from_dict,
)

__all__ = [
    "KINDS",
    "SCHEMA_VERSION",
    "CalibrationPoint",
    "DeviceProfile",
    "FitError",
    "Kernel",
    "KindRule",
    "PredictedLayer",
    "Prediction",
    "ProfileError",
    "ProfileMismatchError",
    "Rule",
    "calibrate",
    "check_matches",
    "fit_rule",
    "kernels",
    "kind_of",
    "load_profile",
    "predict",
    "predict_report",
    "profile_from_dict",
]
