"""The memos that keep a growing sweep's suggestions cheap must never change an answer.

Library mode remembers each run's record by the run's content, and bayes remembers each run's
encoded row by its params dict (checked against a copy). A run changed in place, in any way
the engine reads, must be read afresh; a memo warm or cold must give the same suggestion.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.core import bayes
from controller.core.config import parse_config
from controller.core.runs import RunRecord, SharedRunRecord
from opensweep import engine as library

PARAMETERS = {
    "lr": {"distribution": "log_uniform_values", "min": 1e-5, "max": 1e-1},
    "opt": {"values": ["adam", "sgd", 1, True]},
    "layers": {"min": 1, "max": 8},
}
CONFIG = {"method": "bayes", "metric": {"name": "loss", "goal": "minimize"},
          "parameters": PARAMETERS}
NESTED = {"method": "bayes", "metric": {"name": "loss", "goal": "minimize"},
          "parameters": {"x": {"min": 0.0, "max": 1.0},
                         "net": {"parameters": {"width": {"values": [8, 16, 32]},
                                                "drop": {"min": 0.0, "max": 0.5}}}}}


def _runs(n: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    runs = []
    for i in range(n):
        params = {"lr": float(10 ** rng.uniform(-5, -1)),
                  "opt": ["adam", "sgd", 1, True][int(rng.integers(4))],
                  "layers": int(rng.integers(1, 9))}
        loss = float((np.log10(params["lr"]) + 3) ** 2 + params["layers"] / 8)
        runs.append({"id": f"r{i}", "config": params, "state": "finished",
                     "summary": {"loss": loss}, "history": [{"loss": loss, "_step": 0}]})
    return runs


def _clear_memos() -> None:
    library._record_memo.clear()
    library._last_list.clear()
    library._config_memo.clear()
    bayes._ROW_MEMOS.clear()
    bayes._SHARED_MEMOS.clear()
    bayes._LAST_COLLECT.clear()
    bayes._ENCODINGS.clear()


def _fresh(config: dict[str, Any], runs: list[dict[str, Any]], seed: int) -> Any:
    """The answer with every memo cold and private copies of the runs."""
    _clear_memos()
    return library.next_run(copy.deepcopy(config), copy.deepcopy(runs), seed)


def test_warm_and_cold_memos_give_the_same_suggestions() -> None:
    runs = _runs(40)
    for seed in (1, 2):
        cold = _fresh(CONFIG, runs, seed)
        warm = library.next_run(CONFIG, runs, seed)
        again = library.next_run(CONFIG, runs, seed)
        assert cold == warm == again


@pytest.mark.parametrize(
    "change",
    [
        lambda run: run["config"].__setitem__("lr", 0.05),
        lambda run: run["config"].__setitem__("opt", True),  # was 1: equal, not the same
        lambda run: run.__setitem__("state", "failed"),
        lambda run: run["summary"].__setitem__("loss", -100.0),
        lambda run: run["history"][0].__setitem__("loss", -100.0),
        lambda run: run["config"].pop("layers"),
    ],
    ids=["config value", "1 to True", "state", "summary", "history record", "missing key"],
)
def test_a_run_changed_in_place_is_read_afresh(change: Any) -> None:
    runs = _runs(30, seed=3)
    runs[5]["config"]["opt"] = 1
    library.next_run(CONFIG, runs, 4)  # memoise every run as it is
    change(runs[5])
    runs[5]["summary"] = dict(runs[5]["summary"])  # (a new dict or the same: both are read)
    assert library.next_run(CONFIG, runs, 4) == _fresh(CONFIG, runs, 4)


def test_memoised_records_are_what_to_run_record_builds() -> None:
    runs = _runs(5)
    space = parse_config(CONFIG).space
    expected = [vars(library.to_run_record(space, copy.deepcopy(r))) for r in runs]
    for _ in range(2):
        records = library._records(space, runs)
        assert [vars(r) for r in records] == expected
        assert all(type(r) is SharedRunRecord for r in records)


def test_a_memoised_record_does_not_share_the_callers_objects() -> None:
    runs = _runs(3)
    space = parse_config(CONFIG).space
    record = library._records(space, runs)[0]
    runs[0]["config"]["lr"] = 0.09
    runs[0]["history"].append({"loss": -1.0, "_step": 1})
    assert record.params["lr"] != 0.09
    assert len(record.history) == 1


def test_runs_that_are_not_plain_data_are_still_read_every_time() -> None:
    runs: list[Any] = _runs(12)
    runs[0]["config"]["lr"] = np.float64(0.001)  # MessagePack cannot encode it: never memoised
    space = parse_config(CONFIG).space
    record = RunRecord("rec", {"lr": 0.01, "opt": "sgd", "layers": 2}, "finished",
                       {"loss": 1.0}, [])
    runs.append(record)
    records = library._records(space, runs)
    assert records[-1] is record
    assert records[0].params["lr"] == 0.001
    runs[0]["config"]["lr"] = np.float64(0.002)
    assert library._records(space, runs)[0].params["lr"] == 0.002


def test_duplicate_ids_are_still_refused_when_memoised() -> None:
    runs = _runs(3)
    library.next_run(CONFIG, runs, 0)
    with pytest.raises(library.EngineInputError, match=r"runs\[3\]\.id: 'r1'"):
        library.next_run(CONFIG, [*runs, copy.deepcopy(runs[1])], 0)


def test_a_list_read_again_with_runs_appended_gives_what_a_fresh_read_gives() -> None:
    runs = _runs(24, seed=5)
    space = parse_config(CONFIG).space
    expected = [vars(library.to_run_record(space, copy.deepcopy(r))) for r in runs]
    _clear_memos()
    for n in (3, 3, 10, 17, 24, 24):
        records = library._records(space, runs[:n])
        assert [vars(r) for r in records] == expected[:n]
        assert len(library._last_list[space].records) == n  # the list was taken as grown
    records.append(records[0])  # the caller's copy: the remembered list is not changed
    assert [vars(r) for r in library._records(space, runs)] == expected
    for seed in (1, 2):
        assert library.next_run(CONFIG, runs[:20], seed) == _fresh(CONFIG, runs[:20], seed)


def test_a_list_that_is_not_the_last_one_grown_is_read_run_by_run() -> None:
    runs = _runs(12, seed=6)
    space = parse_config(CONFIG).space
    library._records(space, runs)
    replaced = {**_runs(1, seed=9)[0], "id": "new"}
    for other in (runs[:5], runs[1:], [runs[1], runs[0], *runs[2:]], [*runs[:-1], replaced]):
        expected = [vars(library.to_run_record(space, copy.deepcopy(r))) for r in other]
        assert [vars(r) for r in library._records(space, other)] == expected


_EDITS = st.lists(st.tuples(st.sampled_from(["append", "finish", "drop", "swap", "same"]),
                            st.integers(0, 10**6)), min_size=1, max_size=25)


@settings(max_examples=60, deadline=None)
@given(_EDITS)
def test_a_list_read_again_after_any_edits_gives_what_a_fresh_read_gives(
    edits: list[tuple[str, int]],
) -> None:
    """Whatever happened to the list since the last read (runs appended, one finished in
    place, one dropped, two swapped), its records are what reading every run afresh gives,
    and the runs before the first change keep their records (taken from the last read)."""
    space = parse_config(CONFIG).space
    pool = _runs(60, seed=11)
    for i, run in enumerate(pool):
        run["state"] = "running" if i % 3 else "finished"
    runs = pool[:5]
    fresh_id = iter(range(10**6))
    before = library._records(space, runs)
    for edit, k in edits:
        runs = list(runs)
        first_changed = len(runs)
        if edit == "append":
            runs.append({**copy.deepcopy(pool[k % len(pool)]), "id": f"n{next(fresh_id)}"})
        elif edit == "finish" and runs:
            i = k % len(runs)
            runs[i]["state"] = "finished"  # in place, as a loop marks a run done
            runs[i]["summary"] = {"loss": float(k % 7)}
            first_changed = i
        elif edit == "drop" and runs:
            first_changed = k % len(runs)
            del runs[first_changed]
        elif edit == "swap" and len(runs) > 1:
            i = k % (len(runs) - 1)
            runs[i], runs[i + 1] = runs[i + 1], runs[i]
            first_changed = i
        records = library._records(space, runs)
        expected = [vars(library.to_run_record(space, copy.deepcopy(r))) for r in runs]
        assert [vars(r) for r in records] == expected
        for i in range(min(first_changed, len(before), len(records))):
            assert records[i] is before[i]
        before = records


def test_appended_runs_with_one_id_are_refused_and_the_list_still_grows_after() -> None:
    runs = _runs(4)
    space = parse_config(CONFIG).space
    library._records(space, runs)
    twin = {**copy.deepcopy(runs[0]), "summary": {"loss": 9.0}}
    extra = _runs(6)[4:]
    with pytest.raises(library.EngineInputError, match=r"runs\[5\]\.id: 'r4'"):
        library._records(space, [*runs, extra[0], {**extra[0], "summary": {"loss": 1.0}}])
    with pytest.raises(library.EngineInputError, match=r"runs\[4\]\.id: 'r0'"):
        library._records(space, [*runs, twin])
    assert len(library._records(space, [*runs, *extra])) == 6


def test_a_config_changed_in_place_is_parsed_afresh() -> None:
    config = copy.deepcopy(CONFIG)
    runs = _runs(20)
    library.next_run(config, runs, 0)
    config["parameters"]["layers"] = {"min": 20, "max": 30}
    assert 20 <= library.next_run(config, runs, 0)["layers"] <= 30


# ------------------------------------------------------------------ bayes' encoded-row memo


def _encode_all(parameters: dict[str, Any], params: list[dict[str, Any]]) -> list[Any]:
    enc = bayes.SpaceEncoding(parse_config({**NESTED, "parameters": parameters}).space)
    memo = bayes._row_memo(enc.space)
    return [bayes._encoded(enc, memo, p) for p in params]


def test_remembered_rows_equal_fresh_encodings_and_change_with_their_params() -> None:
    parameters = NESTED["parameters"]
    enc = bayes.SpaceEncoding(parse_config(NESTED).space)
    params = [{"x": 0.25, "net": {"width": 16, "drop": 0.1}},
              {"x": 0.5, "net": {"width": 64, "drop": 0.1}},  # not in the space
              {"x": 0.75}]                                     # incomplete
    bayes._ROW_MEMOS.clear()
    bayes._SHARED_MEMOS.clear()
    first = _encode_all(parameters, params)
    assert first[0][0] == np.array(enc.encode_nested(params[0])).tobytes()
    assert first[0][1] == bayes._key(np.array(enc.encode_nested(params[0])))
    assert first[1] == first[2] == (None, None)
    assert _encode_all(parameters, params) == first
    params[0]["net"]["width"] = 32  # nested, in place
    params[1]["net"]["width"] = 8
    params[2]["net"] = {"width": 8, "drop": 0.0}
    rows = _encode_all(parameters, params)
    assert [row[0] for row in rows] == [np.array(enc.encode_nested(p)).tobytes() for p in params]


def test_a_large_sweep_suggests_the_same_with_its_memos_warm_or_cold() -> None:
    config = parse_config(CONFIG)
    runs = [library.to_run_record(config.space, r) for r in _runs(bayes.FAST_SEARCH_AFTER + 30)]
    _clear_memos()
    bayes._FIT_MEMO.clear()
    cold = bayes.suggest(config, runs, 11)
    assert bayes.suggest(config, runs, 11) == cold
    rebuilt = [RunRecord(r.id, copy.deepcopy(r.params), r.state, r.summary, r.history)
               for r in runs]
    assert bayes.suggest(config, rebuilt, 11) == cold


def test_a_numpy_value_never_shares_a_memo_entry_with_its_bytes() -> None:
    space = parse_config(CONFIG).space
    as_bytes = _runs(1)
    as_bytes[0]["config"]["lr"] = np.float64(0.001).tobytes()
    assert library._records(space, as_bytes)[0].params["lr"] == np.float64(0.001).tobytes()
    as_numpy = _runs(1)
    as_numpy[0]["config"]["lr"] = np.float64(0.001)
    assert library._records(space, as_numpy)[0].params["lr"] == 0.001
    assert library._records(space, as_bytes)[0].params["lr"] == np.float64(0.001).tobytes()


def test_shared_records_give_what_plain_records_give() -> None:
    config = parse_config(CONFIG)
    runs = _runs(bayes.FAST_SEARCH_AFTER + 20, seed=8)
    runs[3]["state"] = "running"
    runs[4]["state"] = "failed"
    runs[5]["state"] = "stopped"
    del runs[5]["summary"], runs[5]["history"]
    shared = library._records(config.space, runs)
    plain = [RunRecord(**vars(r)) for r in shared]
    _clear_memos()
    enc = bayes.SpaceEncoding(config.space)
    for _ in range(2):  # cold, then from the memo
        a = bayes._collect(enc, shared, "loss", "minimize")
        b = bayes._collect(enc, plain, "loss", "maximize")
        c = bayes._collect(enc, plain, "loss", "minimize")
        assert vars(a) == vars(c)
        assert b.y_obs == [-v for v in c.y_obs]
    assert bayes.suggest(config, shared, 2) == bayes.suggest(config, plain, 2)


def test_a_changed_run_arrives_as_a_new_shared_record() -> None:
    runs = _runs(30, seed=9)
    space = parse_config(CONFIG).space
    before = library._records(space, runs)
    runs[7]["summary"]["loss"] = -5.0
    after = library._records(space, runs)
    assert after[7] is not before[7] and after[7].summary["loss"] == -5.0
    assert all(a is b for i, (a, b) in enumerate(zip(before, after, strict=True)) if i != 7)
    assert library.next_run(CONFIG, runs, 1) == _fresh(CONFIG, runs, 1)


def test_collecting_a_list_that_grows_or_changes_gives_what_a_fresh_collection_gives() -> None:
    config = parse_config(CONFIG)
    runs = _runs(60, seed=10)
    runs[5]["state"] = "running"
    runs[9]["state"] = "failed"
    enc = bayes.SpaceEncoding(config.space)

    def collected(run_list: list[dict[str, Any]], plain_at: int | None = None) -> Any:
        records = library._records(config.space, run_list)
        if plain_at is not None:  # a record of the controller's kind: may change, never kept
            records[plain_at] = RunRecord(**vars(records[plain_at]))
        return vars(bayes._collect(enc, records, "loss", "minimize"))

    def fresh(run_list: list[dict[str, Any]]) -> Any:
        bayes._LAST_COLLECT.clear()
        bayes._SHARED_MEMOS.clear()
        return vars(bayes._collect(enc, library._records(config.space, run_list), "loss",
                                   "minimize"))

    steps = [
        lambda: runs[:40],                       # first call
        lambda: runs[:41],                       # grew by one
        lambda: runs[:50],                       # grew by nine
        lambda: runs[:50],                       # the same list again
        lambda: [*runs[:20], *runs[21:50]],      # one removed in the middle
        lambda: runs[:30],                       # shrank
    ]
    for step in steps:
        assert collected(step()) == fresh(step())
    runs[5]["state"] = "finished"  # the running run finished: a new record in the middle
    assert collected(runs) == fresh(runs)
    assert collected(runs, plain_at=3) == fresh(runs)
    assert collected(runs) == fresh(runs)  # after a call with a record that was not shared


def test_runs_are_read_as_data_whatever_containers_carry_them() -> None:
    """A tuple is read as a list and an IntEnum as its int, memoised or not: the memo key is
    the run's MessagePack encoding, and the record is built from its decoding."""
    import enum

    class Layers(enum.IntEnum):
        THREE = 3

    runs = _runs(20, seed=4)
    as_data = copy.deepcopy(runs)
    runs[2]["history"] = tuple(runs[2]["history"])
    runs[3]["config"]["layers"] = Layers.THREE
    as_data[3]["config"]["layers"] = 3
    space = parse_config(CONFIG).space
    _clear_memos()
    expected = [vars(library.to_run_record(space, r)) for r in as_data]
    for _ in range(2):  # cold, then from the memo
        assert [vars(r) for r in library._records(space, runs)] == expected
    assert library.next_run(CONFIG, runs, 5) == _fresh(CONFIG, as_data, 5)


def test_true_one_and_one_point_oh_stay_three_values_in_the_memo() -> None:
    space = parse_config(CONFIG).space
    _clear_memos()
    seen = []
    for value in (1, True, 1.0):
        runs = _runs(1)
        runs[0]["config"]["opt"] = value
        record = library._records(space, runs)[0]
        seen.append((type(record.params["opt"]), record.params["opt"]))
    assert seen == [(int, 1), (bool, True), (float, 1.0)]
