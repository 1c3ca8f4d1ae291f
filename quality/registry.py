"""A small model registry in the project's own storage (``gluecell qa list/promote/rollback``).

Why not MLflow: it is ~830 MB installed (REFERENCES "Inspection") for what is here a JSON file and a folder;
the concepts follow it (registered versions, aliases ``champion`` / ``challenger`` instead of stages).

Layout of a registry folder::

    registry.json      {"format": "gluecell.qa-registry/1", "models": {name: {...}}, "aliases": {...},
                        "history": [{"alias", "from", "to", "time"}, ...]}
    <name>.pt          the model files (copied in on ``register``; their SHA-256 is checked on load)
    <name>.json        the model's record (config, dataset hashes, policy, metrics)

The default folder is ``$GLUECELL_QA_REGISTRY`` or the shipped ``quality/models``; the cell loads the model
the ``champion`` alias names. Every change is written atomically.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

from gluecell.core.fileio import atomic_write_json, read_json

from .errors import ModelError, RegistryError
from .model import file_sha256, load_model

__all__ = ["REGISTRY_FORMAT", "Registry", "default_registry"]

REGISTRY_FORMAT = "gluecell.qa-registry/1"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def default_registry() -> Path:
    """``$GLUECELL_QA_REGISTRY`` or the shipped ``quality/models`` folder."""
    env = os.environ.get("GLUECELL_QA_REGISTRY")
    return Path(env) if env else Path(__file__).resolve().parent / "models"


class Registry:
    """Registered QA models and their aliases."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else default_registry()

    def _read(self) -> dict[str, Any]:
        path = self.root / "registry.json"
        if not path.is_file():
            return {"format": REGISTRY_FORMAT, "models": {}, "aliases": {}, "history": []}
        d = read_json(path)
        if not isinstance(d, dict) or d.get("format") != REGISTRY_FORMAT:
            raise RegistryError(f"{path}: not a {REGISTRY_FORMAT} file")
        return d

    def _write(self, d: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.root / "registry.json", d)

    def list(self) -> dict[str, Any]:
        """The registry's content (models, aliases, history)."""
        return self._read()

    def register(self, model_path: str | os.PathLike[str], name: str, metrics: dict[str, Any] | None = None) -> str:
        """Copy a model file in under ``name`` (validated first); returns the name."""
        if not _NAME.match(name):
            raise RegistryError(f"model name {name!r}: use 1-64 letters, digits, '_', '.', '-'")
        d = self._read()
        if name in d["models"]:
            raise RegistryError(f"a model named {name!r} is already registered")
        m = load_model(model_path)
        self.root.mkdir(parents=True, exist_ok=True)
        dest = self.root / f"{name}.pt"
        tmp = dest.with_name(dest.name + ".tmp")
        shutil.copyfile(model_path, tmp)
        os.replace(tmp, dest)
        atomic_write_json(self.root / f"{name}.json", {**m.record, "metrics": metrics or m.record.get("metrics")})
        d["models"][name] = {"file": dest.name, "sha256": m.sha256, "registered": _now(),
                             "code_version": m.record.get("code_version"),
                             "hashes": m.record.get("hashes")}  # fmt: skip
        self._write(d)
        return name

    def promote(self, name: str, alias: str = "champion") -> None:
        """Point ``alias`` at ``name`` (the previous target is kept in the history for rollback)."""
        d = self._read()
        if name not in d["models"]:
            raise RegistryError(f"unknown model {name!r}; registered: {', '.join(sorted(d['models'])) or 'none'}")
        if not _NAME.match(alias):
            raise RegistryError(f"alias {alias!r}: use letters, digits, '_', '.', '-'")
        self.path_of(name, d)  # refuses a tampered or missing file before it goes live
        d["history"].append({"alias": alias, "from": d["aliases"].get(alias), "to": name, "time": _now()})
        d["aliases"][alias] = name
        self._write(d)

    def rollback(self, alias: str = "champion") -> str:
        """Point ``alias`` back at what it named before its last change; returns that name."""
        d = self._read()
        for i in range(len(d["history"]) - 1, -1, -1):
            h = d["history"][i]
            if h["alias"] == alias and h.get("rolled_back") is None and h["to"] == d["aliases"].get(alias):
                if h["from"] is None:
                    raise RegistryError(f"alias {alias!r} has no earlier model to roll back to")
                h["rolled_back"] = _now()
                d["aliases"][alias] = h["from"]
                d["history"].append({"alias": alias, "from": h["to"], "to": h["from"], "time": _now(),
                                     "rollback": True, "rolled_back": "n/a"})  # fmt: skip
                self._write(d)
                return str(h["from"])
        raise RegistryError(f"alias {alias!r} has no promotion to roll back")

    def path_of(self, name: str, d: dict[str, Any] | None = None) -> Path:
        """File of a registered model, its SHA-256 checked."""
        d = d if d is not None else self._read()
        entry = d["models"].get(name)
        if entry is None:
            raise RegistryError(f"unknown model {name!r}")
        path = self.root / entry["file"]
        if not path.is_file():
            raise ModelError(f"{path}: registered model file is missing")
        if file_sha256(path) != entry["sha256"]:
            raise ModelError(f"{path}: file does not match its registered SHA-256 (changed or corrupt)")
        return path

    def resolve(self, name_or_alias: str) -> Path:
        """File of an alias (e.g. "champion") or a registered name."""
        d = self._read()
        name = d["aliases"].get(name_or_alias, name_or_alias)
        if name not in d["models"]:
            raise RegistryError(f"{self.root}: no model or alias {name_or_alias!r} (aliases: "
                                f"{', '.join(sorted(d['aliases'])) or 'none'}); train and promote one with "
                                "`gluecell qa train` / `gluecell qa promote`")  # fmt: skip
        return self.path_of(name, d)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
