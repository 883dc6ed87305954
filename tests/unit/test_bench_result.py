"""make bench's RESULT line: the simulator's figures, each real input's and the slowest one's ratio."""

from typing import Any

from tests.unit.test_bench_dates import bench_module


def figures(real: dict[str, dict[str, Any]]) -> dict[str, Any]:
    slowest = min((f["records_per_s"] for f in real.values()), default=None)
    return {
        "first_run": {"events_per_s": 100_000.0},
        "copy_bound_ratio": 0.7,
        "naive_speedup": 18.0,
        "peak_rss_mb": 480,
        "real_inputs": real,
        "real_input_ratio": None if slowest is None else slowest / 100_000.0,
        "monitor": {"seconds": 3.2},
    }


def source(rate: float, peak: int) -> dict[str, Any]:
    return {"records_per_s": rate, "records": 1_000_000, "peak_rss_mb": peak, "extract": {"seconds": 2.0}}


def test_every_real_input_and_the_ratio_of_the_slowest() -> None:
    bench = bench_module("bench")
    real = {
        "landing_csv": source(80_000, 600),
        "landing_jsonl": source(70_000, 610),
        "landing_parquet": source(90_000, 700),
        "stream": source(75_000, 590),
    }
    fields = dict(pair.split("=") for pair in bench.result_fields(figures(real)).split())
    assert fields["events_per_s"] == "100000" and fields["copy_bound_ratio"] == "0.70"
    assert fields["landing_csv_events_per_s"] == "80000"
    assert fields["landing_jsonl_events_per_s"] == "70000"
    assert fields["landing_parquet_events_per_s"] == "90000"
    assert fields["stream_events_per_s"] == "75000"
    assert fields["stream_extract_events_per_s"] == "500000"
    assert fields["real_input_ratio"] == "0.70"  # JSONL, the slowest
    assert fields["real_peak_rss_mb"] == "700"


def test_a_source_left_out_shows_as_a_dash() -> None:
    fields = bench_module("bench").result_fields(figures({"landing_csv": source(80_000, 600)}))
    assert "landing_jsonl_events_per_s=- " in fields and "stream_events_per_s=- " in fields
    assert "real_input_ratio=0.80 " in fields
