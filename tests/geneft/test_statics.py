"""Relations, |Aut|, b, p_c, f_UB and the closure under a relation's axioms."""

from __future__ import annotations

import math

import numpy as np
import pytest

from intelligible.core.errors import ConfigError, DataError
from intelligible.geneft.data import split_pairs
from intelligible.geneft.relations import (
    bipartite_relation,
    get_relation,
    greater_relation,
    load_relation_file,
    matrix_relation,
    mod_relation,
)
from intelligible.geneft.statics import (
    accuracy_bound,
    automorphism_count,
    balls_in_buckets,
    brute_force_automorphism_count,
    check_redundancy,
    closure,
    correlated_split,
    critical_fraction,
    description_bits,
    exact_bound,
    monte_carlo_bound,
    search_automorphism_count,
    training_split,
)


@pytest.mark.parametrize(
    "relation",
    [mod_relation(6, 2), mod_relation(6, 3), mod_relation(6, 1), greater_relation(6), bipartite_relation(6, 2),
     bipartite_relation(6, 3), bipartite_relation(7, 3), mod_relation(7, 7)],
    ids=lambda r: f"{r.name}-n{r.n}",
)  # fmt: skip
def test_automorphisms_and_bits_match_brute_force(relation):
    brute = brute_force_automorphism_count(relation.matrix)
    assert automorphism_count(relation, "formula") == brute
    assert automorphism_count(relation, "search") == brute
    assert description_bits(relation) == pytest.approx(math.log2(math.factorial(relation.n) / brute))


def test_search_counts_random_graphs_like_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(60):
        n = int(rng.integers(2, 7))
        matrix = rng.random((n, n)) < rng.random()
        if rng.random() < 0.4:
            matrix |= matrix.T  # symmetric graphs have more automorphisms
        assert search_automorphism_count(matrix) == brute_force_automorphism_count(matrix)


def test_search_on_structured_graphs():
    n = 10
    cycle = np.zeros((n, n), dtype=bool)
    for i in range(n):
        cycle[i, (i + 1) % n] = True
    assert search_automorphism_count(cycle) == n  # rotations of a directed cycle
    assert search_automorphism_count(cycle | cycle.T) == 2 * n  # and reflections when undirected


def test_reference_bits_for_n_30():
    # the reference values
    expected = {"greater": 107.7, "mod3": 39.8, "mod5": 53.3, "bipartite10": 24.8}
    for name, bits in expected.items():
        relation = get_relation(name, 30)
        assert description_bits(relation) == pytest.approx(bits, abs=0.05), name
    # the general method agrees with the closed form at full size too
    relation = get_relation("bipartite10", 30)
    assert automorphism_count(relation, "search") == math.factorial(10) * math.factorial(20)


def test_critical_fraction_and_accuracy_bound_by_hand():
    # b = 39.75 (mod 3, n = 30): m = ln(0.1)/ln(1 - 1/b) = 90.4 samples of N = 900
    bits = description_bits(get_relation("mod3", 30))
    m = math.log(0.1) / math.log(1 - 1 / bits)
    assert critical_fraction(bits, 900) == pytest.approx(m / 900)
    assert critical_fraction(bits, 900) == pytest.approx(0.1004, abs=1e-4)
    assert balls_in_buckets(m, bits) == pytest.approx(0.9)
    # f_UB: b = 4 bits, 2 samples: f = 1 - 0.75^2 = 0.4375; p* = 0.3 -> 0.4375 + 0.7 * 0.5625
    assert accuracy_bound(2 / 100, 4.0, 100, 0.3) == pytest.approx(0.4375 + 0.7 * 0.5625)
    assert critical_fraction(0.0, 900) == 0.0
    with pytest.raises(ConfigError, match="alpha"):
        critical_fraction(10.0, 900, alpha=1.0)


def _known(n, facts):
    true = np.zeros((n, n), dtype=bool)
    false = np.zeros((n, n), dtype=bool)
    for (x, y), value in facts.items():
        (true if value else false)[x, y] = True
    return true, false


def test_closure_of_an_equivalence():
    axioms = mod_relation(6, 2).axioms()
    assert set(axioms) == {"reflexive", "symmetric", "transitive"}
    true, false = closure(*_known(6, {(0, 2): True, (2, 4): True, (4, 1): False}), axioms)
    assert true[0, 4] and true[4, 0] and true[3, 3]  # transitivity, symmetry, reflexivity
    assert false[0, 1] and false[1, 2] and false[1, 0]  # 0 ~ 4, 4 !~ 1 -> 0 !~ 1
    assert not true[1, 3] and not false[1, 3]  # nothing links 1 and 3


def test_closure_of_a_strict_order():
    axioms = greater_relation(5).axioms()
    assert {"irreflexive", "antisymmetric", "total", "transitive"} <= set(axioms)
    true, false = closure(*_known(5, {(0, 1): True, (2, 1): False}), axioms)  # 0 < 1, not 2 < 1 -> 1 < 2
    assert true[1, 2] and true[0, 2] and false[2, 0] and false[3, 3]
    assert not (true[3, 4] or false[3, 4])


def test_closure_of_a_bipartite_relation():
    axioms = bipartite_relation(6, 3).axioms()
    assert "antitransitive" in axioms and "negatively-transitive" in axioms
    # 0-3 differ, 3-1 differ -> 0, 1 same; 1-4 same... 4 differs from 3 and 0
    true, false = closure(*_known(6, {(0, 3): True, (3, 1): True, (1, 4): False}), axioms)
    assert false[0, 1] and false[1, 0] and false[0, 4]
    assert true[4, 3] and true[3, 4]
    assert not (true[0, 5] or false[0, 5])


@pytest.mark.parametrize("name", ["mod3", "greater", "bipartite4", "mod2"])
def test_closure_is_sound_and_complete_at_full_data(name):
    relation = get_relation(name, 12)
    for seed in range(3):
        train = split_pairs(12, 0.3, seed)
        flat = relation.matrix.reshape(-1)
        known_true, known_false = np.zeros(144, bool), np.zeros(144, bool)
        known_true[train], known_false[train] = flat[train], ~flat[train]
        true, false = closure(known_true.reshape(12, 12), known_false.reshape(12, 12), relation.axioms())
        assert not (true & ~relation.matrix).any() and not (false & relation.matrix).any()  # never wrong
    assert exact_bound(relation, np.arange(144)).determined == 1.0
    assert exact_bound(relation, np.arange(144)).test_accuracy_bound == 1.0


def test_monte_carlo_bound_rises_with_data():
    rows = monte_carlo_bound(get_relation("mod3", 12), [0.05, 0.2, 0.6], seeds=(0, 1, 2))
    values = [row["test_accuracy_bound"] for row in rows]
    assert values == sorted(values) and values[-1] > 0.95
    assert rows[0]["test_accuracy_bound"] >= 2 / 3 - 1e-9  # never below the blind guess


def test_bad_relations_are_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match="n must be from 2"):
        get_relation("mod3", 1)
    with pytest.raises(ConfigError, match="mod 4 needs k to divide n = 30"):
        get_relation("mod4", 30)
    with pytest.raises(ConfigError, match="part size from 1 to n - 1"):
        get_relation("bipartite30", 30)
    with pytest.raises(ConfigError, match="unknown relation 'cousin'"):
        get_relation("cousin", 30)
    with pytest.raises(DataError, match="must be square"):
        matrix_relation(np.zeros((3, 4), dtype=bool))
    with pytest.raises(DataError, match="must be boolean.*found 2"):
        matrix_relation(np.array([[0, 2], [1, 0]]))
    with pytest.raises(DataError, match="must be boolean.*dtype <U1"):
        matrix_relation(np.array([["a", "b"], ["c", "d"]]))
    with pytest.raises(ConfigError, match="size n must be from 2"):
        matrix_relation(np.ones((1, 1), dtype=bool))
    text = tmp_path / "r.txt"
    text.write_text("0 1 0\n1 0 yes\n0 1 0\n")
    with pytest.raises(DataError, match="entry 'yes' is not boolean"):
        load_relation_file(text)
    text.write_text("0 1\n1 0 1\n")
    with pytest.raises(DataError, match="different lengths"):
        load_relation_file(text)
    with pytest.raises(DataError, match="does not exist"):
        load_relation_file(tmp_path / "missing.npy")
    good = tmp_path / "r.csv"
    good.write_text("1,1,0\n1,1,0\n0,0,1\n")
    relation = load_relation_file(good)
    assert relation.n == 3 and automorphism_count(relation) == 2
    for error in (ConfigError, DataError):
        assert "\n" not in str(error)


# ---------------------------------------------------------------------------------------------
# correlated training sets


def test_a_correlated_split_of_redundancy_zero_is_the_uniform_split():
    relation = get_relation("mod3", 12)
    for seed in (0, 7):
        np.testing.assert_array_equal(correlated_split(relation, 0.3, seed, 0.0), split_pairs(12, 0.3, seed))
        np.testing.assert_array_equal(training_split(relation, 0.3, seed), split_pairs(12, 0.3, seed))


@pytest.mark.parametrize("name", ["mod3", "greater", "bipartite4"])
def test_a_correlated_split_is_a_seeded_set_of_the_right_size(name):
    relation = get_relation(name, 12)
    first = correlated_split(relation, 0.4, 3, 0.6)
    assert len(first) == 58 and len(np.unique(first)) == 58 and (np.diff(first) > 0).all()
    assert first.min() >= 0 and first.max() < 144
    np.testing.assert_array_equal(first, correlated_split(relation, 0.4, 3, 0.6))
    assert not np.array_equal(first, correlated_split(relation, 0.4, 4, 0.6))


def test_correlated_sets_determine_less_and_their_bound_comes_later():
    relation = get_relation("mod3", 15)
    fractions = [0.05, 0.1, 0.2, 0.3]
    uniform = monte_carlo_bound(relation, fractions, seeds=range(6))
    correlated = monte_carlo_bound(relation, fractions, seeds=range(6), redundancy=0.7)
    for u, c in zip(uniform, correlated):
        assert c["determined"] <= u["determined"] + 1e-12
    assert sum(u["determined"] - c["determined"] for u, c in zip(uniform, correlated)) > 0.2
    # at full redundancy almost nothing new is drawn once the closure has something left to repeat
    index = correlated_split(relation, 0.2, 0, 0.95)
    assert exact_bound(relation, index).determined < exact_bound(relation, split_pairs(15, 0.2, 0)).determined


def test_a_relation_without_axioms_draws_uniformly_when_correlated():
    rng = np.random.default_rng(1)
    relation = matrix_relation(rng.random((8, 8)) < 0.5)
    assert relation.axioms() == ()  # a random matrix obeys none of the axioms
    index = correlated_split(relation, 0.5, 0, 0.9)
    assert len(index) == 32
    assert exact_bound(relation, index).test_determined == 0.0


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, math.nan, math.inf, "half", True, None])
def test_a_bad_redundancy_is_a_one_line_error(bad):
    with pytest.raises(ConfigError, match=r"redundancy must be a share in \[0, 1\)"):
        check_redundancy(bad)
    with pytest.raises(ConfigError, match="redundancy"):
        monte_carlo_bound(get_relation("mod3", 6), [0.5], redundancy=bad)
