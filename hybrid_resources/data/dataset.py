"""The dataset's contract file, and the task a training set is for.

A dataset declares what it is in one small YAML (or JSON) file, ``<data root>/dataset.yaml``
(``HYBRID_DATASET_CONTRACT`` names another path). Every key is optional::

    target: quality            # the target column (default: label)
    task: multiclass           # auto (default) | binary | multiclass | regression
    classes: ["3", "4", "5"]   # the declared classes; a label outside them is refused
    max_classes: 20            # classification holds at most this many classes
    categorical: [plan, region]  # omit to infer; [] for none
    ordinal: [size]            # categorical columns encoded as ordinal codes (others one-hot)
    max_levels: 20             # one-hot cap: the most frequent train levels
    missing:
      impute: median           # numeric: median | mean | most_frequent | constant
      impute_categorical: most_frequent  # most_frequent | constant ("missing")
      fill_value: 0            # the constant of "constant"
      max_rate: 0.5            # a file missing more of a column is quarantined
      columns:                 # per column overrides
        income: {impute: constant, max_rate: 0.1}

Without a file, :func:`resolve_task` infers the task by a stated rule (see its docstring), and the
outcome says what was inferred and how to pin it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hybrid_resources.data.contract import DatasetContract

__all__ = ["DatasetFile", "DatasetFileError", "TaskResolution", "load_dataset_contract", "resolve_task"]

Impute = Literal["median", "mean", "most_frequent", "constant"]


class ColumnPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    impute: Impute | None = None
    max_rate: float | None = Field(default=None, ge=0.0, le=1.0)


class MissingPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    impute: Impute = "median"
    impute_categorical: Literal["most_frequent", "constant"] = "most_frequent"
    fill_value: float = 0.0
    max_rate: float = Field(default=0.5, ge=0.0, le=1.0)
    columns: dict[str, ColumnPolicy] = Field(default_factory=dict)


class DatasetFile(BaseModel):
    """The contract file's schema (unknown keys are refused, so a typo is never silently ignored)."""

    model_config = ConfigDict(extra="forbid")
    target: str = "label"
    task: Literal["auto", "binary", "multiclass", "regression"] = "auto"
    classes: list[str] | None = None
    max_classes: int = Field(default=20, ge=2)
    categorical: list[str] | None = None
    ordinal: list[str] = Field(default_factory=list)
    max_levels: int = Field(default=20, ge=1)
    missing: MissingPolicy = Field(default_factory=MissingPolicy)

    def to_contract(self) -> DatasetContract:
        missing = self.missing
        policies = tuple(sorted((name, policy.impute or "", missing.max_rate if policy.max_rate is None else policy.max_rate)
                                for name, policy in missing.columns.items()))
        return DatasetContract(
            label_column=self.target, task=self.task, classes=tuple(str(c) for c in self.classes or ()),
            max_classes=self.max_classes, categorical=None if self.categorical is None else tuple(self.categorical),
            ordinal=tuple(self.ordinal), max_levels=self.max_levels, impute=missing.impute,
            impute_categorical=missing.impute_categorical, fill_value=missing.fill_value,
            max_missing_rate=missing.max_rate, column_policies=policies)


class DatasetFileError(ValueError):
    """The dataset contract file cannot be read or breaks its schema; the message names the key."""


def load_dataset_contract(path: Path | None = None) -> DatasetContract:
    """The contract of the dataset from its file (``path``, default ``DataLayout.dataset_contract``);
    the defaults when there is no file. Raises :class:`DatasetFileError` for a bad file."""
    if path is None:
        from hybrid_resources.data.paths import DataLayout
        path = DataLayout.from_env().dataset_contract
    if not path.is_file():
        return DatasetContract()
    try:
        text = path.read_text(encoding="utf-8")
        content = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
        return DatasetFile.model_validate(content or {}).to_contract()
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in error.errors())
        raise DatasetFileError(f"dataset contract file {path} is invalid: {problems}") from error
    except (OSError, UnicodeDecodeError, yaml.YAMLError, json.JSONDecodeError) as error:
        raise DatasetFileError(f"dataset contract file {path} cannot be read: {error}") from error


@dataclass(frozen=True)
class TaskResolution:
    """The task of a training set: ``task``, its ``classes`` (sorted label strings; empty for
    regression), whether it was ``declared`` or inferred, and ``how`` (one sentence, with how to pin it)."""

    task: str
    classes: tuple[str, ...]
    declared: bool
    how: str

    def to_dict(self) -> dict:
        return {"task": self.task, "classes": list(self.classes), "declared": self.declared, "how": self.how}


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _class_order(labels: set[str]) -> tuple[str, ...]:
    """Classes in a stable order: numerically when every label is a number (so "10" follows "9"),
    else as text."""
    numbers = {label: _number(label) for label in labels}
    if all(value is not None for value in numbers.values()):
        return tuple(sorted(labels, key=lambda label: (numbers[label], label)))
    return tuple(sorted(labels))


def resolve_task(contract: DatasetContract, labels: list[str]) -> TaskResolution:
    """The task of the training labels ``labels`` (strings, as the warehouse stores them).

    Declared (``contract.task``): taken as is; classes are the declared list, else the labels seen.
    Inferred (``auto``), the stated rule: when every label reads as an integer, or any label is
    text, and there are at most ``max_classes`` distinct values, it is classification (binary for
    2 classes, multi-class above); when every label is a number and some are not integers, or
    integers take more than ``max_classes`` values, it is regression.
    """
    distinct = set(labels)
    pin = "pin it with `task:` in the dataset contract file (dataset.yaml)"
    if contract.task == "regression":
        return TaskResolution("regression", (), True, "regression, declared in the dataset contract file")
    if contract.task in ("binary", "multiclass"):
        classes = tuple(contract.classes) or _class_order(distinct)
        return TaskResolution(contract.task, classes, True, f"{contract.task}, declared in the dataset contract file")
    numbers = [_number(label) for label in distinct]
    all_numbers = all(value is not None for value in numbers)
    integers = all_numbers and all(float(value).is_integer() for value in numbers)
    if (not all_numbers or integers) and len(distinct) <= contract.max_classes:
        task = "binary" if len(distinct) <= 2 else "multiclass"
        kind = "integer" if integers else "text"
        return TaskResolution(task, _class_order(distinct), False,
                              f"{task}, inferred: {len(distinct)} distinct {kind} labels (at most max_classes "
                              f"{contract.max_classes} is classification); {pin}")
    if all_numbers:
        why = "non-integer numbers" if not integers else f"{len(distinct)} distinct integers (> max_classes)"
        return TaskResolution("regression", (), False, f"regression, inferred: the target holds {why}; {pin}")
    return TaskResolution("multiclass", _class_order(distinct), False,
                          f"{len(distinct)} distinct text labels exceed max_classes ({contract.max_classes}); {pin}")
