"""The manifest entries a prepare config needs: found, missing, or corrupt; and their checksums."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from fluxbridge.data.fetch import inspect, sha256_file
from fluxbridge.data.manifest import Entry, load_manifest
from fluxbridge.data.prepare.config import LoadedConfig
from fluxbridge.errors import ConfigError, FluxbridgeError

#: Extra advice for entries that cannot be fetched at all.
_HINTS = {
    "drivers": (
        "the FLUXCOM RS+METEO driver set is not publicly distributed (ask MPI-BGC, see "
        "docs/real_data.md 'Drivers'), or build the drivers from ERA5 + MODIS with "
        "drivers.source: public (configs/prepare/public.yaml)"
    ),
}


class MissingInputsError(FluxbridgeError):
    """Inputs named by the config are not in the data directory (or not in the manifest)."""


@dataclass(frozen=True)
class Input:
    """A manifest entry resolved in the data directory."""

    entry: Entry
    path: Path
    role: str

    def files(self) -> list[Path]:
        """Every file of the input (the file itself, or the files under the folder), sorted."""
        if self.path.is_file():
            return [self.path]
        return sorted(p for p in self.path.rglob("*") if p.is_file())


def resolve_inputs(loaded: LoadedConfig, data_dir: Path) -> dict[str, Input]:
    """Inputs by role; one :class:`MissingInputsError` lists every missing required entry.

    The optional RECCAP2 mask (``regions.entry``) is returned only when present.
    """
    cfg = loaded.config
    manifest = load_manifest(loaded.manifest, data_dir)
    by_name = {e.name: e for e in manifest.entries}
    wanted = {role: name for name, role in cfg.entries().items()}
    if cfg.regions.entry is not None:
        wanted["regions"] = cfg.regions.entry
    unknown = [f"  {name} ({role})" for role, name in wanted.items() if name not in by_name]
    problems: list[str] = []
    missing_names: list[str] = []
    found: dict[str, Input] = {}
    for role, name in wanted.items():
        if name not in by_name:
            continue
        entry = by_name[name]
        status = inspect(entry, data_dir)
        path = entry.target_path(data_dir)
        if status.state in ("present", "unverified"):
            found[role] = Input(entry, path, role)
        elif role != "regions":
            missing_names.append(name)
            hint = f"; {_HINTS[role]}" if role in _HINTS else ""
            problems.append(
                f"  {name} ({role}, {entry.access}) {status.state} at {path}: {status.detail}{hint}"
            )
    message = []
    if unknown:
        message.append(
            f"the config names entries that {loaded.manifest} does not list:\n"
            + "\n".join(unknown)
            + "".join(
                f"\n    ({_HINTS[r]})"
                for r, n in wanted.items()
                if n not in by_name and r in _HINTS
            )
        )
    if problems:
        message.append(
            f"{len(problems)} input(s) missing or corrupt in {data_dir}:\n"
            + "\n".join(problems)
            + f"\nget them with: invoke fetch --data-dir {data_dir} --only "
            + ",".join(missing_names)
        )
    if message:
        raise MissingInputsError(f"{loaded.path}: cannot prepare:\n" + "\n".join(message))
    return found


def input_checksums(inputs: dict[str, Input], cache: Path) -> dict[str, dict[str, str]]:
    """sha256 of every input file, by entry name and path relative to the entry's target.

    Digests are cached in ``cache`` keyed by (path, size, mtime), so a resumed
    prepare does not hash tens of gigabytes again.
    """
    known: dict[str, dict[str, object]] = {}
    if cache.exists():
        try:
            known = json.loads(cache.read_text())
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{cache}: corrupt checksum cache ({exc}); delete it") from exc
    out: dict[str, dict[str, str]] = {}
    for item in inputs.values():
        digests: dict[str, str] = {}
        for f in item.files():
            stat = f.stat()
            key = str(f.resolve())
            hit = known.get(key)
            stamp = [stat.st_size, stat.st_mtime_ns]
            if not (isinstance(hit, dict) and hit.get("stat") == stamp):
                hit = {"stat": stamp, "sha256": sha256_file(f)}
                known[key] = hit
            rel = f.name if item.path.is_file() else str(f.relative_to(item.path))
            digests[rel] = str(hit["sha256"])
        out[item.entry.name] = digests
    cache.write_text(json.dumps(known, indent=1, sort_keys=True))
    return out
