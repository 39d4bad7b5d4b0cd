"""
Japanese CSVs as Japanese Excel saves them (cp932, "Shift-JIS"): Japanese column names and
values, read with ``encoding=`` by every operator that reads a CSV, transcoded to UTF-8 on the
way, and run end to end against the emulator.
"""

from __future__ import annotations

import csv
import re
import tracemalloc
from pathlib import Path

import pytest
from helpers import DAGS, DATA, EMULATOR_OPTIONS, predone_connection, run_dag

from airflow_provider_predone import files
from airflow_provider_predone.emulator import EmulatorProcess
from airflow_provider_predone.exceptions import InvalidInputError
from airflow_provider_predone.hooks.predone import API_KEYS, PredictionOneHook
from airflow_provider_predone.operators.predone import (
    PredictionOneBatchPredictOperator,
    PredictionOneRetrainOperator,
    PredictionOneTrainOperator,
)

COLUMNS = {
    "customer_id": "顧客番号",
    "signup_date": "登録日",
    "age": "年齢",
    "gender": "性別",
    "region": "地域",
    "device": "端末",
    "plan": "プラン",
    "monthly_visits": "月間訪問数",
    "avg_session_minutes": "平均滞在分",
    "support_tickets": "問い合わせ件数",
    "last_purchase_amount": "直近購入額",
    "purchased_premium": "プレミアム購入",
}
VALUES = {
    "female": "女性",
    "male": "男性",
    "other": "その他",
    "yes": "はい",
    "no": "いいえ",
    "Kanto": "関東",
    "Kansai": "関西",
    "Tohoku": "東北",
    "Chubu": "中部",
    "Kyushu": "九州",
    "Hokkaido": "北海道",
    "mobile": "スマホ",
    "desktop": "パソコン",
    "tablet": "タブレット",
    # ① and ㈱ exist in cp932 (what Excel writes) but not in JIS Shift_JIS.
    "free": "無料①",
    "basic": "基本㈱",
    "standard": "標準",
}
FILES = {
    "train.csv": "学習データ.csv",
    "eval.csv": "評価データ.csv",
    "score.csv": "予測対象.csv",
    "new_month.csv": "今月.csv",
    "new_month_eval.csv": "今月評価.csv",
}


def japanese(text: str) -> str:
    """An example data file with Japanese column names and values."""
    rows = list(csv.reader(text.splitlines()))
    rows[0] = [COLUMNS[name] for name in rows[0]]
    body = [[VALUES.get(cell, cell) for cell in row] for row in rows[1:]]
    lines = [",".join(row) for row in [rows[0], *body]]
    return "\r\n".join(lines) + "\r\n"  # Excel's line ends


@pytest.fixture(scope="module")
def japanese_files(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("japanese")
    for source, target in FILES.items():
        (folder / target).write_bytes(japanese((DATA / source).read_text()).encode("cp932"))
    return folder


@pytest.fixture(scope="module")
def japanese_run(emulator_process: EmulatorProcess, airflow_db, japanese_files, tmp_path_factory):
    emulator_process.reset()
    emulator_process.configure(fault_rate=0.0, **EMULATOR_OPTIONS)
    API_KEYS.clear()
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("AIRFLOW_CONN_PREDONE_DEFAULT", predone_connection(emulator_process.url))
    out = tmp_path_factory.mktemp("japanese-out")
    try:
        result = run_dag(DAGS, "predone_japanese", data=str(japanese_files), out=str(out))
        data_sets = list(PredictionOneHook().list_data_sets())
        yield result, out, data_sets
    finally:
        monkeypatch.undo()


def test_every_operator_reads_cp932(japanese_run) -> None:
    result, _, _ = japanese_run
    assert result.states == {"train": "success", "prediction_api": "success", "score": "success", "retrain": "success"}
    assert result.xcom("train")["metrics"]["auc"] > 0.6
    assert result.xcom("retrain")["status"] == "job_finished"


def test_the_service_receives_utf8(japanese_run, japanese_files, tmp_path) -> None:
    _, _, data_sets = japanese_run
    training = next(d for d in data_sets if d["name"] == "学習データ.csv" or d["data_count"] == 2000)
    target = tmp_path / "uploaded.csv"
    PredictionOneHook().download(training["download_url"], target, label="uploaded training data")
    uploaded = target.read_bytes()
    original = (japanese_files / "学習データ.csv").read_bytes()
    assert uploaded == original.decode("cp932").encode("utf-8")
    assert uploaded.startswith("顧客番号,登録日,年齢".encode())
    assert "無料①".encode() in uploaded


def test_scoring_writes_japanese_in_utf8(japanese_run) -> None:
    result, out, _ = japanese_run
    scored = result.xcom("score")
    assert scored["rows_in"] == scored["rows_scored"] == 500
    with (out / "予測結果.csv").open(encoding="utf-8", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert len(rows) == 500
    assert rows[0]["顧客番号"] == "C004501"  # the input, echoed back (ad)
    assert {row["性別"] for row in rows} == {"女性", "男性", "その他"}


@pytest.mark.parametrize(
    "build",
    [
        lambda path: PredictionOneTrainOperator(
            task_id="t", train_data=path, model_name="m", config={"tc": "プレミアム購入", "tt": "regression"}
        ),
        lambda path: PredictionOneRetrainOperator(task_id="t", model_id=1, train_data=path),
        lambda path: PredictionOneBatchPredictOperator(
            task_id="t", classifier_id="c", input_data=path, output_data="/tmp/never-written.csv"
        ),
    ],
    ids=["train", "retrain", "batch predict"],
)
def test_cp932_without_encoding_names_encoding(japanese_files, build) -> None:
    """Refused before any request (the classifier and model ids here do not even exist)."""
    task = build(str(japanese_files / "学習データ.csv"))
    with pytest.raises(InvalidInputError, match=re.escape("reads as cp932 (Shift-JIS")) as refused:
        task.execute({})
    assert "pass encoding='cp932'" in str(refused.value)


def test_encoding_names(japanese_files) -> None:
    assert files.check_encoding("utf-8") == files.check_encoding("UTF8") == files.UTF8
    assert files.check_encoding("utf-8-sig") == files.UTF8
    # Excel's "Shift-JIS" is cp932; the strict JIS codec would refuse ① and ㈱.
    assert files.check_encoding("shift_jis") == files.check_encoding("SJIS") == "cp932"
    assert files.check_encoding("euc_jp") == "euc_jp"
    for bad, message in [("klingon", "unknown encoding 'klingon'"), ("base64", "is not a text encoding"), ("", "")]:
        with pytest.raises(InvalidInputError, match=re.escape(f"encoding{':' if bad else ''}")) as refused:
            files.check_encoding(bad)
        assert message in str(refused.value)
        assert "'cp932'" in str(refused.value)


def test_a_wrong_encoding_found_late_in_the_file(tmp_path) -> None:
    """The header decodes, a row far below does not (a lead byte without its trail byte): the pass
    before the upload finds it."""
    path = tmp_path / "late.csv"
    rows = "".join(f"C{i},{i % 70},はい\n" for i in range(200_000))
    path.write_bytes("顧客,年齢,購入\n".encode("cp932") + rows.encode("cp932") + b"C,1,\x81,\n")
    source = files.resolve("train_data", path)
    assert files.read_csv_header(source, "cp932") == ["顧客", "年齢", "購入"]
    with pytest.raises(InvalidInputError, match=r"train_data: .*late\.csv is not cp932 text \(after line \d+\)"):
        files.prepare_upload(source, tmp_path / "scratch", encoding="cp932")


def test_transcoding_memory_does_not_grow_with_the_file(tmp_path) -> None:
    """
    Peak Python memory while transcoding (and scanning for ``tv``) a cp932 file 16 times the
    size of a small one stays within the same small bound: the file is streamed in chunks.
    """
    peaks = {}
    for rows in (20_000, 160_000):
        path = tmp_path / f"{rows}.csv"
        with path.open("wb") as out:
            out.write("顧客番号,年齢,地域,購入\r\n".encode("cp932"))
            line = "C{0:07d},{1},関東地方の顧客①,{2}\r\n"
            for i in range(rows):
                out.write(line.format(i, 20 + i % 50, "いいえ" if i < rows - 1 else "はい").encode("cp932"))
        source = files.resolve("train_data", path)
        tracemalloc.start()
        try:
            prepared = files.prepare_upload(
                source, tmp_path / f"scratch-{rows}", encoding="cp932", target="購入", positive="はい"
            )
            peaks[rows] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert prepared.size == len(path.read_bytes().decode("cp932").encode("utf-8"))
    large_file = (tmp_path / "160000.csv").stat().st_size
    assert large_file > 5 * 1024 * 1024
    assert peaks[160_000] < 8 * 1024 * 1024, peaks
    assert peaks[160_000] < 2 * peaks[20_000] + 1024 * 1024, peaks
