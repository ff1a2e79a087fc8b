"""Calibration: known-answer ECE, temperature recovery, cross-fitting, evaluate/predict wiring, and the
ensemble's spread columns."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from chromoformer.errors import EvaluationError, UsageError
from chromoformer.inference.predict import ensemble_frame
from chromoformer.results.evaluate import (
    cross_fitted,
    ece,
    evaluate,
    fit_temperature,
    margin,
    read_temperature,
    reliability,
    scale,
)


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def test_ece_known_answer_and_reliability_bins():
    p, y = np.array([0.1, 0.1, 0.9, 0.9, 0.95]), np.array([0, 1, 1, 1, 1])
    # bin [0.1, 0.2): mean 0.1, 1/2 expressed -> 2/5 * 0.4; bin [0.9, 1]: mean 0.9166.., all expressed -> 3/5 * 0.0833..
    assert ece(p, y) == pytest.approx(2 / 5 * 0.4 + 3 / 5 * (1 - (0.9 + 0.9 + 0.95) / 3), abs=1e-12)
    t = reliability(p, y)
    assert t.n.tolist() == [0, 2, 0, 0, 0, 0, 0, 0, 0, 3] and t.frac_expressed[9] == 1.0
    assert reliability(np.array([1.0]), np.array([1])).n[9] == 1  # p = 1 falls in the last bin
    assert ece(np.array([0.3, 0.3, 0.3]), np.array([0, 1, 0])) == pytest.approx(1 / 3 - 0.3, abs=1e-12)


def test_margin_and_scaling_are_exact_and_keep_the_ranking():
    p = np.array([1e-4, 0.2, 0.5, 0.7, 0.9999])
    np.testing.assert_allclose(_sigmoid(margin(p)), p, rtol=1e-9)
    np.testing.assert_allclose(scale(p, 1.0), p, rtol=1e-9)
    np.testing.assert_allclose(scale(p, 2.0), _sigmoid(margin(p) / 2), rtol=1e-12)
    assert (np.argsort(scale(p, 3.0)) == np.argsort(p)).all() and scale(np.array([0.5]), 7.0)[0] == 0.5


@pytest.mark.parametrize("true_t", [0.5, 2.5])
def test_fit_temperature_recovers_the_planted_one(true_t):
    rng = np.random.default_rng(0)
    z = rng.normal(0, 3, 40_000)
    y = rng.random(len(z)) < _sigmoid(z / true_t)  # the model's margins are off by a factor true_t
    t = fit_temperature(_sigmoid(z), y)
    assert t == pytest.approx(true_t, rel=0.05)
    assert ece(scale(_sigmoid(z), t), y) < ece(_sigmoid(z), y) / 3
    with pytest.raises(EvaluationError, match="needs both classes"):
        fit_temperature(np.array([0.2, 0.7]), np.array([1, 1]))


def test_cross_fitting_uses_only_the_other_folds():
    rng = np.random.default_rng(1)
    parts = []
    for f, t in (("a", 0.5), ("b", 3.0), ("c", 3.0)):
        z = rng.normal(0, 2, 5000)
        parts.append(pd.DataFrame({"fold": f, "score": _sigmoid(z), "label": (rng.random(5000) < _sigmoid(z / t))}))
    df = pd.concat(parts, ignore_index=True)
    scaled, temps = cross_fitted(df)
    others = df.fold != "a"
    assert temps["a"] == pytest.approx(fit_temperature(df.score[others], df.label[others]), rel=1e-9)
    np.testing.assert_allclose(scaled[df.fold == "a"], scale(df.score[df.fold == "a"], temps["a"]))


def _runs(tmp_path, true_t=3.0):
    """Three folds of over-confident held-out predictions (the truth is softer by true_t)."""
    rng = np.random.default_rng(2)
    paths = []
    for f in (1, 2, 3):
        z = rng.normal(0, 4, 600)
        d = tmp_path / f"fold{f}"
        d.mkdir()
        pd.DataFrame({"gene_id": [f"G{f}_{i}" for i in range(600)], "label": (rng.random(600) < _sigmoid(z / true_t))
                      .astype(int), "score": _sigmoid(z)}).to_csv(d / "val_predictions.csv", index=False)
        paths.append(d / "val_predictions.csv")
    return paths


def test_evaluate_reports_ece_and_fits_a_temperature(tmp_path):
    paths = _runs(tmp_path)
    plain = evaluate(paths, tmp_path / "e1")
    assert "ece" in plain and "ece_temperature" not in plain and not (tmp_path / "e1" / "temperature.json").exists()
    assert (tmp_path / "e1" / "reliability.png").stat().st_size > 5000
    m = evaluate(paths, tmp_path / "e2", temperature=True).set_index("fold")
    assert m.loc["pooled", "ece_temperature"] < m.loc["pooled", "ece"] / 2  # over-confidence removed, held out
    assert m.loc["pooled", "auroc"] == plain.set_index("fold").loc["pooled", "auroc"]  # ranking unchanged
    doc = json.loads((tmp_path / "e2" / "temperature.json").read_text())
    assert doc["temperature"] == pytest.approx(m.loc["pooled", "temperature"]) and 2.4 < doc["temperature"] < 3.6
    assert doc["fitted_on"] == "1800 held-out predictions of folds fold1, fold2, fold3"
    cal = pd.read_csv(tmp_path / "e2" / "calibration.tsv", sep="\t")
    assert cal.scores.nunique() == 2 and cal.groupby("scores").n.sum().tolist() == [1800, 1800]
    assert read_temperature(tmp_path / "e2" / "temperature.json") == doc["temperature"]


def test_temperature_inputs_are_checked(tmp_path):
    assert read_temperature("1.5") == 1.5
    for bad in ("0", "-2", "nan", "inf", str(tmp_path / "nothere.json")):
        with pytest.raises(UsageError):
            read_temperature(bad)
    (tmp_path / "t.json").write_text('{"temp": 2}')
    with pytest.raises(UsageError, match="no numeric 'temperature'"):
        read_temperature(tmp_path / "t.json")
    reg = tmp_path / "reg"
    reg.mkdir()
    pd.DataFrame({"gene_id": ["a", "b", "c"], "label": [1.5, 2.5, 0.2], "score": [1.0, 2.0, 0.3]}).to_csv(
        reg / "val_predictions.csv", index=False)
    with pytest.raises(EvaluationError, match="applies to classifiers"):
        evaluate([reg / "val_predictions.csv"], tmp_path / "e", temperature=True)


def test_ensemble_spread_columns_and_temperature():
    a = np.array([[0.0, 2.0], [1.0, 0.0]], np.float32)
    b = np.array([[0.0, 4.0], [0.0, 0.0]], np.float32)
    one = ensemble_frame(["g1", "g2"], [a], "clf")
    assert list(one.columns) == ["gene_id", "logit_0", "logit_1", "prediction"]  # one checkpoint: no spread
    two = ensemble_frame(["g1", "g2"], [a, b], "clf")
    assert list(two.columns) == ["gene_id", "logit_0", "logit_1", "prediction", "prediction_sd", "margin_sd"]
    np.testing.assert_allclose(two.prediction, _sigmoid(np.array([3.0, -0.5])), rtol=1e-6)
    np.testing.assert_allclose(two.margin_sd, [np.std([2, 4], ddof=1), np.std([-1, 0], ddof=1)], rtol=1e-6)
    np.testing.assert_allclose(two.prediction_sd, [np.std(_sigmoid(np.array([2, 4])), ddof=1),
                                                   np.std(_sigmoid(np.array([-1, 0])), ddof=1)], rtol=1e-5)
    hot = ensemble_frame(["g1", "g2"], [a, b], "clf", temperature=2.0)
    np.testing.assert_allclose(hot.prediction, _sigmoid(np.array([1.5, -0.25])), rtol=1e-6)
    np.testing.assert_array_equal(hot.logit_1, two.logit_1)  # the logits are written unscaled
    reg = ensemble_frame(["g1", "g2"], [a[:, :1], b[:, :1] + 1], "reg")
    np.testing.assert_allclose(reg.prediction_sd, [np.std([0, 1], ddof=1), 0.0])
    with pytest.raises(UsageError, match="does not apply with --probability sigmoid"):
        ensemble_frame(["g1", "g2"], [a, b], "clf", probability="sigmoid", temperature=2.0)
    with pytest.raises(UsageError, match="applies to classifiers"):
        ensemble_frame(["g1", "g2"], [a[:, :1]], "reg", temperature=2.0)


def test_predict_cli_applies_a_fitted_temperature(demo, tmp_path):
    from chromoformer.cli import main
    from chromoformer.results.evaluate import save_temperature

    ck = str(demo / "scrambled-clf-fold1.pt")
    args = ["predict", "-m", str(demo / "demo_meta.csv"), "-d", str(demo / "demo_data"), "-k", ck]
    main([*args, "-o", str(tmp_path / "plain.csv")])
    t = save_temperature(tmp_path / "temperature.json", 2.0, 10, ["fold1"])
    main([*args, "-k", ck, "--temperature", str(t), "-o", str(tmp_path / "hot.csv")])
    plain, hot = pd.read_csv(tmp_path / "plain.csv"), pd.read_csv(tmp_path / "hot.csv")
    np.testing.assert_allclose(hot.prediction, _sigmoid((plain.logit_1 - plain.logit_0) / 2), rtol=1e-5)
    assert (hot.prediction_sd == 0).all() and (hot.margin_sd == 0).all()  # the same checkpoint twice: no spread
    with pytest.raises(SystemExit) as e:
        main([*args, "--temperature", "-1", "-o", str(tmp_path / "bad.csv")])
    assert e.value.code == 2 and not (tmp_path / "bad.csv").exists()


def test_one_class_evaluation_says_so_and_draws_no_curve(tmp_path, caplog, recwarn):
    """All genes of one label: AUROC/AP are NaN with one log line per fold (not sklearn's warnings),
    accuracy and ECE still computed, the figure still written (the report links it)."""
    p = tmp_path / "fold1.csv"
    p.write_text("gene_id,label,score\nA,1,0.9\nB,1,0.2\nC,1,0.7\n")
    m = evaluate([p], tmp_path / "ev").set_index("fold")
    assert np.isnan(m.auroc["pooled"]) and np.isnan(m.ap["fold1"])
    assert m.accuracy["pooled"] == pytest.approx(2 / 3)
    assert caplog.text.count("AUROC and AP are undefined") == 2
    assert not [w for w in recwarn if "sklearn" in str(w.filename)]
    assert (tmp_path / "ev" / "roc_pr.png").is_file()
