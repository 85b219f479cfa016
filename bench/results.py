"""The result document: its shape, the printed table, and the files under bench/results/."""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"
TARGETS = {"ingest": 0.3, "ingest_to_enqueued": 1.0, "settle": 2.0, "end_to_end": 2.0, "settle_latency": 1.5}
REQUIRED = {
    "ingest": ("items", "seconds", "floor_seconds", "ratio"),
    "ingest_to_enqueued": ("items", "seconds", "floor_seconds", "ratio"),
    "end_to_end": ("items", "seconds", "floor_seconds", "ratio"),
    "settle": ("payouts", "seconds", "floor_seconds", "ratio"),
    "read": ("page_size", "p50_ms", "p95_ms"),
    "memory": ("api_peak_rss_mb", "settle_peak_rss_mb"),
}


def verdict(ratio: float, target: float) -> str:
    return "OK" if math.isfinite(ratio) and ratio <= target else "MISS"


def validate(result: dict[str, Any]) -> None:
    """Raise ValueError when a section or key of the documented shape is missing."""
    missing = [
        f"{section}.{key}" for section, keys in REQUIRED.items() for key in keys if key not in result.get(section, {})
    ]
    scaling = result.get("scaling")
    if not isinstance(scaling, list) or not scaling or any({"items", "seconds"} - set(p) for p in scaling):
        missing.append("scaling[].items/seconds")
    if missing:
        raise ValueError(f"result is missing {', '.join(missing)}")


def file_stamp(moment: datetime) -> str:
    """UTC timestamp usable as a file name, e.g. 20250105T142233Z."""
    return moment.strftime("%Y%m%dT%H%M%SZ")


def write(result: dict[str, Any], moment: datetime, directory: Path = RESULTS_DIR) -> tuple[Path, Path]:
    """Write latest.json and <UTC timestamp>.json (same content); returns both paths."""
    validate(result)
    directory.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2, sort_keys=False) + "\n"
    dated = directory / f"{file_stamp(moment)}.json"
    latest = directory / "latest.json"
    for path in (dated, latest):
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(text)
        tmp.replace(path)
    return latest, dated


def table(result: dict[str, Any]) -> str:
    """The human-readable summary printed at the end of a run."""
    ing, st, rd, mem = result["ingest"], result["settle"], result["read"], result["memory"]
    lines = [
        f"ingest   {ing['items']:>6} items   {ing['seconds']:7.2f} s   floor {ing['floor_seconds']:6.2f} s"
        f"   ratio {ing['ratio']:5.2f}  (target <= {TARGETS['ingest']})  {verdict(ing['ratio'], TARGETS['ingest'])}",
        *_ingest_detail(ing),
        *_figure("enqueued", result.get("ingest_to_enqueued"), "items", "ingest_to_enqueued"),
        f"settle   {st['payouts']:>6} payouts {st['seconds']:7.2f} s   floor {st['floor_seconds']:6.2f} s"
        f"   ratio {st['ratio']:5.2f}  (target <= {TARGETS['settle']})  {verdict(st['ratio'], TARGETS['settle'])}",
        *_settle_detail(st),
        *_figure("e2e", result.get("end_to_end"), "items", "end_to_end"),
        f"read     page {rd['page_size']:>5}      p50 {rd['p50_ms']:7.1f} ms   p95 {rd['p95_ms']:7.1f} ms"
        f"   ({rd.get('pages', '?')} pages)",
        f"memory   api peak RSS {mem['api_peak_rss_mb']:6.1f} MB   settle peak RSS {mem['settle_peak_rss_mb']:6.1f} MB",
    ]
    lat = result.get("settle_latency")
    if lat:
        lines.append(
            f"latency  {lat['payouts']:>6} payouts {lat['seconds']:7.2f} s   floor {lat['floor_seconds']:6.2f} s"
            f"   ratio {lat['ratio']:5.2f}  (target <= {TARGETS['settle_latency']})"
            f"  {verdict(lat['ratio'], TARGETS['settle_latency'])}   Efí at {lat['provider_latency_ms']} ms a call"
        )
    hooks = result.get("webhooks")
    if hooks:
        lines.append(
            f"webhooks {hooks['events']:>6} events  {hooks['seconds']:7.2f} s   settle {hooks['settle_seconds']:6.2f} s"
            f"   ratio {hooks['ratio']:5.3f}  (target <= {hooks['target']})  {verdict(hooks['ratio'], hooks['target'])}"
        )
    for point in result["scaling"]:
        per_k = point.get("seconds_per_1000", point["seconds"] * 1000 / point["items"])
        lines.append(f"scaling  {point['items']:>6} items   {point['seconds']:7.2f} s   {per_k:6.3f} s per 1,000 items")
    return "\n".join(lines)


def _figure(label: str, section: dict[str, Any] | None, unit: str, target: str) -> list[str]:
    if not section:
        return []
    return [
        f"{label:<8} {section[unit]:>6} {unit:<7} {section['seconds']:7.2f} s   floor {section['floor_seconds']:6.2f} s"
        f"   ratio {section['ratio']:5.2f}  (target <= {TARGETS[target]})"
        f"  {verdict(section['ratio'], TARGETS[target])}",
        *_rounds(section),
    ]


def _pairs(values: dict[str, float], unit: str, digits: int = 2, skip_zero: bool = False) -> str:
    shown = {k: v for k, v in values.items() if not (skip_zero and round(v, digits) == 0)}
    return ", ".join(f"{k.replace('_', ' ')} {v:.{digits}f}{unit}" for k, v in shown.items())


def _rounds(section: dict[str, Any]) -> list[str]:
    rounds = section.get("rounds") or []
    if len(rounds) < 2:
        return []
    ratios = ", ".join(f"{r['ratio']:.2f}" for r in rounds)
    return [f"           ratio per round: {ratios}  (the median round is shown above)"]


def _ingest_detail(ing: dict[str, Any]) -> list[str]:
    lines = _rounds(ing)
    if ing.get("phases_seconds"):
        lines.append(f"           phases: {_pairs(ing['phases_seconds'], ' s')}")
    floor = ing.get("floor", {})
    if "copy_seconds" in floor:
        runs = len(floor.get("runs", [])) or 1
        lines.append(
            f"           floor: COPY {floor['copy_seconds']:.3f} s + {floor.get('send_calls', '?')}"
            f" sequential SendMessageBatch {floor['send_seconds']:.2f} s"
            + (f"  (mean of {runs} runs)" if runs > 1 else "")
        )
    if ing.get("cpu_seconds"):
        lines.append(f"           cpu: {_pairs(ing['cpu_seconds'], ' s', skip_zero=True)}")
    return lines


def _settle_detail(st: dict[str, Any]) -> list[str]:
    lines = _rounds(st)
    if st.get("cpu_ms_per_payout"):
        lines.append(f"           cpu ms per payout: {_pairs(st['cpu_ms_per_payout'], '', skip_zero=True)}")
    floor_cpu = st.get("floor", {}).get("cpu_ms_per_message")
    if floor_cpu:
        lines.append(f"           floor cpu ms per message: {_pairs(floor_cpu, '', skip_zero=True)}")
    return lines
