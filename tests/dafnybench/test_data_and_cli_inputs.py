"""The bundled data (no folder outside the package is ever searched), loading from paths and the hub,
and every CLI verb's inputs: numbers, files, folders and output paths, each a one-line error that
leaves the disk as it was."""

from __future__ import annotations

import gzip
import json
import os
import time

import pytest
from tests.dafnybench.conftest import LOOP

from intelligible.cli import main
from intelligible.core.errors import ConfigError, DataError
from intelligible.dafnybench import data, experiment
from intelligible.dafnybench.analysis import PUBLISHED_MODELS, read_published, read_results_csv
from intelligible.dafnybench.data import BUNDLED_DATA, load_tasks, read_data_text
from intelligible.dafnybench.hints import strip_hints


def _one_line_error(args: list[str], capsys) -> str:  # noqa: ANN001
    assert main(args) == 2, args
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, (args, err)
    return err


# ------------------------------------------------------------------------------------------- data
def test_the_development_split_license_and_results_ship_with_the_package():
    assert experiment.default_data_dir() == BUNDLED_DATA
    assert "Apache License" in (BUNDLED_DATA / "LICENSE").read_text()
    readme = (BUNDLED_DATA / "README.md").read_text()
    assert "sun-wendy/DafnyBench" in readme and "Apache" in readme and "Loughridge" in readme
    tasks = experiment.default_tasks()
    assert len(tasks) == 543 and len({t.test_id for t in tasks}) == 543
    for model in PUBLISHED_MODELS:
        outcomes, programs = read_published(BUNDLED_DATA / "published_results", model)
        assert len(outcomes) == 543 and len(programs) > 500


def test_no_shared_folder_is_searched(tmp_path, monkeypatch):
    # a `shared/data/dafnybench` beside the working directory was picked up before the bundled data
    decoy = tmp_path / "work" / "shared" / "data" / "dafnybench"
    decoy.mkdir(parents=True)
    record = {"test_ID": 0, "test_file": "a.dfy", "ground_truth": LOOP, "hints_removed": strip_hints(LOOP)}
    (decoy / "test_dev.json").write_text(json.dumps([record]))
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.delenv(experiment.DATA_ENV, raising=False)
    assert experiment.default_data_dir() == BUNDLED_DATA and len(experiment.default_tasks()) == 543
    source = "".join(p.read_text() for p in BUNDLED_DATA.parent.glob("*.py"))
    assert '"shared"' not in source and "/work/shared" not in source


def test_the_data_folder_override(tmp_path, monkeypatch):
    record = {"test_ID": 5, "test_file": "a.dfy", "ground_truth": LOOP, "hints_removed": strip_hints(LOOP)}
    (tmp_path / "test.json.gz").write_bytes(gzip.compress(json.dumps([record]).encode()))
    monkeypatch.setenv(experiment.DATA_ENV, str(tmp_path))
    assert [t.test_id for t in experiment.default_tasks()] == ["005"]
    monkeypatch.setenv(experiment.DATA_ENV, str(tmp_path / "missing"))
    with pytest.raises(DataError, match="INTELLIGIBLE_DAFNYBENCH_DATA=.* does not exist"):
        experiment.default_data_dir()
    monkeypatch.setenv(experiment.DATA_ENV, str(tmp_path / "test.json.gz"))
    with pytest.raises(DataError, match="is a file: it must name a folder"):
        experiment.default_data_dir()


def test_gzip_is_read_transparently_and_bad_files_are_named(tmp_path):
    records = [{"test_ID": 1, "test_file": "a.dfy", "ground_truth": LOOP, "hints_removed": strip_hints(LOOP)}]
    (tmp_path / "tasks.json.gz").write_bytes(gzip.compress(json.dumps(records).encode()))
    assert load_tasks(tmp_path / "tasks.json.gz")[0].test_id == "001"
    assert load_tasks(tmp_path / "tasks.json")[0].test_id == "001"  # the .gz beside a missing .json
    (tmp_path / "broken.json.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="broken.json.gz: cannot read it"):
        load_tasks(tmp_path / "broken.json.gz")
    (tmp_path / "binary.json").write_bytes(bytes(range(256)))
    with pytest.raises(DataError, match="not a UTF-8 text file"):
        load_tasks(tmp_path / "binary.json")
    with pytest.raises(DataError, match="is a folder, expected a file"):
        read_data_text(tmp_path)


def test_a_missing_data_path_is_reported_missing(tmp_path, capsys):
    # it used to say "needs the datasets package": any a/b-shaped path was taken for a hub id
    err = _one_line_error(["dafnybench", "run", "--model", "local:smollm2", "--data", str(tmp_path / "no" / "test.json"),
                           "--out", str(tmp_path / "out")], capsys)  # fmt: skip
    assert "no such file or folder" in err and "datasets" not in err
    assert not (tmp_path / "out").exists()
    with pytest.raises(DataError, match="no such file or folder"):
        load_tasks("some/dataset")


def test_the_hub_offline_is_one_quick_line(monkeypatch):
    pytest.importorskip("huggingface_hub")
    import huggingface_hub

    reason = data._hub_unreachable("http://127.0.0.1:9")  # nothing listens on the discard port
    assert reason is not None and reason.startswith("127.0.0.1:9")

    calls = []

    def offline_download(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls.append(kwargs)
        raise OSError("no cached copy")

    monkeypatch.setattr(
        data, "_hub_unreachable", lambda endpoint: "huggingface.co:443: Name or service not known"
    )
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline_download)
    start = time.perf_counter()
    with pytest.raises(DataError) as error:
        load_tasks("hf:wendy-sun/DafnyBench")
    assert time.perf_counter() - start < 2
    message = str(error.value)
    assert "\n" not in message and "not reachable" in message and "no copy is cached" in message
    assert calls[0]["local_files_only"] is True  # offline: the cache only, no retries
    with pytest.raises(DataError, match="not a Hugging Face dataset id"):
        load_tasks("hf:not a dataset")


# ------------------------------------------------------------------------------------------- CLI
@pytest.mark.parametrize("value, message", [
    ("nan", "finite number"), ("inf", "finite number"), ("1e30", "at most 86400"), ("-1", "> 0"), ("0", "> 0"),
    ("abc", "not a valid float"),
])  # fmt: skip
def test_time_limits_are_validated_by_every_verb(tmp_path, capsys, value, message):
    program = tmp_path / "p.dfy"
    program.write_text(LOOP)
    for verb in (["verify", str(program)], ["run", "--model", "local:smollm2", "--out", str(tmp_path / "run")],
                 ["rescore-published", "--out", str(tmp_path / "rescore")]):  # fmt: skip
        err = _one_line_error(["dafnybench", *verb, "--time-limit", value], capsys)
        assert "--time-limit" in err and message in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.dfy"]


@pytest.mark.parametrize("args", [
    ["run", "--attempts", "-1"], ["run", "--attempts", "0"], ["run", "--attempts", "x"], ["run", "--attempts", "1e3"],
    ["run", "--limit", "-1"], ["run", "--workers", "0"], ["run", "--workers", "-2"], ["run", "--max-tokens", "0"],
    ["rescore-published", "--workers", "0"], ["rescore-published", "--workers", "nan"],
])  # fmt: skip
def test_counts_are_validated(tmp_path, capsys, args):
    extra = ["--model", "local:smollm2"] if args[0] == "run" else []
    err = _one_line_error(["dafnybench", *args, *extra, "--out", str(tmp_path / "out")], capsys)
    assert args[1] in err
    assert not (tmp_path / "out").exists()


def test_run_config_and_verifier_reject_bad_numbers():
    from intelligible.dafnybench.runner import RunConfig
    from intelligible.dafnybench.verifier import Verifier

    for bad in ({"attempts": 0}, {"attempts": True}, {"workers": -1}, {"max_tokens": 0}, {"temperature": float("nan")},
                {"temperature": -1.0}):  # fmt: skip
        with pytest.raises(ConfigError):
            RunConfig(**bad).validate()
    for bad in ({"time_limit": float("nan")}, {"time_limit": float("inf")}, {"time_limit": -1}, {"time_limit": 1e30},
                {"solver_time_limit": 0}, {"solver_time_limit": 1.5}, {"memory_mb": -1}):  # fmt: skip
        with pytest.raises(ConfigError):
            Verifier(**bad)


def test_an_empty_program_is_not_verified(tmp_path, capsys, verifier):
    # `dafnybench verify` on an empty file said "verified"
    empty, comment = tmp_path / "empty.dfy", tmp_path / "comment.dfy"
    empty.write_text("")
    comment.write_text("// nothing but a comment\n/* and another */\n")
    for path in (empty, comment):
        assert "empty" in _one_line_error(["dafnybench", "verify", str(path)], capsys)
    for source in ("", "  \n", "// x\n"):
        verdict = verifier.verify(source)
        assert verdict.status == "parse_error" and not verdict.ok and "empty" in verdict.messages[0]


def test_a_folder_is_not_called_missing(tmp_path, capsys):
    err = _one_line_error(["dafnybench", "verify", str(tmp_path)], capsys)
    assert "is a folder" in err and "no such file" not in err
    err = _one_line_error(["dafnybench", "strip-hints", str(tmp_path)], capsys)
    assert "is a folder" in err and "no such file" not in err
    binary = tmp_path / "prog.dfy"
    binary.write_bytes(b"method M() {}\x00\x01")
    assert "binary" in _one_line_error(["dafnybench", "verify", str(binary)], capsys)


def test_strip_hints_out_must_be_a_writable_file(tmp_path, capsys):
    program = tmp_path / "p.dfy"
    program.write_text(LOOP)
    existing = tmp_path / "folder"
    existing.mkdir()
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    for out, message in ((existing, "is a folder"), (tmp_path / "no" / "x.dfy", "does not exist"),
                         (program / "x.dfy", "does not exist"), ("", "is a folder")):  # fmt: skip
        err = _one_line_error(["dafnybench", "strip-hints", str(program), "--out", str(out)], capsys)
        assert message in err, err
    if os.path.isdir("/proc"):  # a folder no one may create files in, root included
        _one_line_error(
            ["dafnybench", "strip-hints", str(program), "--out", "/proc/no-such-file.dfy"], capsys
        )
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before
    assert main(["dafnybench", "strip-hints", str(program), "--out", str(tmp_path / "task.dfy")]) == 0
    assert (tmp_path / "task.dfy").read_text() == strip_hints(LOOP)


def test_score_rejects_binary_and_damaged_files(tmp_path, capsys):
    binary = tmp_path / "results.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    assert "not a UTF-8 text file" in _one_line_error(["dafnybench", "score", str(binary)], capsys)
    nul = tmp_path / "nul.csv"
    nul.write_text("test_ID,success_on_attempt_#\n1,\x002\n")
    assert "binary" in _one_line_error(["dafnybench", "score", str(nul)], capsys)
    for value in ("abc", "-1", "nan", "inf", "2.5", "1e9"):
        bad = tmp_path / "bad.csv"
        bad.write_text(f"test_ID,test_file,success_on_attempt_#\n000,a.dfy,{value}\n")
        err = _one_line_error(["dafnybench", "score", str(bad)], capsys)
        assert "success_on_attempt_#" in err and "line 2" in err, err
    header_only = tmp_path / "header.csv"
    header_only.write_text("test_ID,test_file,success_on_attempt_#\n")
    assert "no tasks" in _one_line_error(["dafnybench", "score", str(header_only)], capsys)
    with pytest.raises(DataError, match="is a folder without results_summary.csv"):
        read_results_csv(tmp_path)


def test_process_pools_use_single_thread_workers(monkeypatch, verifier):
    from intelligible.core.threads import single_thread_worker
    from intelligible.dafnybench import verifier as verifier_module

    seen = []

    class Pool:
        def __init__(self, **kwargs):  # noqa: ANN003
            seen.append(kwargs)

        def __enter__(self):  # noqa: ANN204
            return self

        def __exit__(self, *exc):  # noqa: ANN002, ANN204
            return False

        def map(self, function, items, chunksize=1):  # noqa: ANN001, ANN201
            return [function(item) for item in items]

    monkeypatch.setattr(verifier_module, "ProcessPoolExecutor", Pool)
    done = verifier_module.Verdict("verified")
    monkeypatch.setattr(verifier_module.Verifier, "verify", lambda self, source, **kwargs: done)
    verifier.verify_many(["method A() {}", "method B() {}"], workers=2)
    verifier.parse_many(["method A() {}", "method B() {}"], workers=2)
    assert len(seen) == 2 and all(kw["initializer"] is single_thread_worker for kw in seen)


def test_programs_that_are_all_comments_are_a_data_defect(dev_tasks, verifier, tmp_path):
    """Three tasks of the split are all comments; Dafny calls them verified, the harness does not."""
    from intelligible.dafnybench.data import data_defects
    from intelligible.dafnybench.experiment import self_check

    empty = [d.test_id for t in dev_tasks for d in data_defects(t) if d.kind == "no_code"]
    assert empty == ["116", "696", "772"]
    task = next(t for t in dev_tasks if t.test_id == "116")
    check = self_check([task], verifier, workers=1)
    assert check.verified == 0 and check.failures == {"parse_error": ["116"]}
