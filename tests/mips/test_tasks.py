"""The 62 MIPS benchmark tasks: generators agree with the reference loops, files load, errors read well."""

from __future__ import annotations

import json

import numpy as np
import pytest

from intelligible.core.errors import ConfigError, DataError
from intelligible.mips import TASKS, Task, get_task, load_task_file, split, task_names

PAPER_NAMES = [
    "Binary_Addition",
    "Base_3_Addition",
    "Base_4_Addition",
    "Base_5_Addition",
    "Base_6_Addition",
    "Base_7_Addition",
    "Bitwise_Xor",
    "Bitwise_Or",
    "Bitwise_And",
    "Bitwise_Not",
    "Parity_Last2",
    "Parity_Last3",
    "Parity_Last4",
    "Parity_All",
    "Parity_Zeros",
    "Evens_Counter",
    "Sum_All",
    "Sum_Last2",
    "Sum_Last3",
    "Sum_Last4",
    "Sum_Last5",
    "Sum_Last6",
    "Sum_Last7",
    "Current_Number",
    "Prev1",
    "Prev2",
    "Prev3",
    "Prev4",
    "Prev5",
    "Previous_Equals_Current",
    "Diff_Last2",
    "Abs_Diff",
    "Abs_Current",
    "Diff_Abs_Values",
    "Min_Seen",
    "Max_Seen",
    "Majority_0_1",
    "Majority_0_2",
    "Majority_0_3",
    "Evens_Detector",
    "Perfect_Square_Detector",
    "Bit_Palindrome",
    "Balanced_Parenthesis",
    "Parity_Bits_Mod2",
    "Alternating_Last3",
    "Alternating_Last4",
    "Bit_Shift_Right",
    "Bit_Dot_Prod_Mod2",
    "Div_3",
    "Div_5",
    "Div_7",
    "Add_Mod_3",
    "Add_Mod_4",
    "Add_Mod_5",
    "Add_Mod_6",
    "Add_Mod_7",
    "Add_Mod_8",
    "Dithering",
    "Newton_Freebody",
    "Newton_Gravity",
    "Newton_Spring",
    "Newton_Magnetic",
]


def test_the_benchmark_has_the_papers_62_tasks_in_order():
    assert len(PAPER_NAMES) == 62
    assert task_names() == PAPER_NAMES
    assert len(set(task_names())) == 62
    assert all(isinstance(task, Task) and task.name == name for name, task in TASKS.items())
    assert all(task.description.strip() for task in TASKS.values())


@pytest.mark.parametrize("name", PAPER_NAMES)
def test_generator_matches_reference_solution(name):
    task = get_task(name)
    for n, seed, length in ((200, 0, None), (20, 1, 7)):
        inputs, outputs = task.generate(n, seed=seed, length=length)
        steps = length or task.length
        assert inputs.shape == (n, steps, task.input_dim) and inputs.dtype == np.int64
        assert outputs.shape == (n, steps, task.output_dim) and outputs.dtype == np.int64
        for index in range(n):
            assert task.reference(inputs[index]) == outputs[index].tolist(), (name, index)
    # The public batch method is the generator's own output function.
    np.testing.assert_array_equal(task.outputs(inputs), outputs)


def test_generation_is_deterministic_per_seed():
    for name in ("Binary_Addition", "Bit_Palindrome", "Newton_Magnetic", "Parity_Bits_Mod2"):
        task = get_task(name)
        first, again, other = task.generate(50, 3), task.generate(50, 3), task.generate(50, 4)
        np.testing.assert_array_equal(first[0], again[0])
        np.testing.assert_array_equal(first[1], again[1])
        assert not np.array_equal(first[0], other[0])


def test_bad_generate_arguments_raise_config_errors():
    task = get_task("Sum_All")
    with pytest.raises(ConfigError, match="length"):
        task.generate(3, 0, length=0)
    with pytest.raises(ConfigError, match="seed"):
        task.generate(3, -1)
    with pytest.raises(ConfigError, match="at most 100"):
        get_task("Newton_Magnetic").generate(3, 0, length=500)
    assert task.generate(0, 0)[0].shape == (0, 10, 1)


def test_split_draws_train_and_test_from_different_streams():
    train_x, train_y, test_x, test_y = split("Sum_Last3", 100, 40, seed=0)
    assert train_x.shape == (100, 10, 1) and test_x.shape == (40, 10, 1)
    assert not np.array_equal(train_x[:40], test_x)
    # The held-out set does not depend on how much training data was asked for.
    np.testing.assert_array_equal(split(get_task("Sum_Last3"), 7, 40, seed=0)[2], test_x)
    np.testing.assert_array_equal(get_task("Sum_Last3").outputs(test_x), test_y)


def test_unknown_task_error_names_the_value_and_lists_valid_tasks():
    with pytest.raises(ConfigError) as caught:
        get_task("Foo")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("unknown task 'Foo'; valid tasks: Binary_Addition, Base_3_Addition, ")
    assert all(name in message for name in PAPER_NAMES)
    with pytest.raises(ConfigError, match="did you mean 'Binary_Addition'"):
        get_task("binary_adition")


@pytest.mark.parametrize(
    ("name", "inputs", "expected"),
    [
        # 3 + 1 = 4, least significant bit first: 1100 + 1000 = 0010
        ("Binary_Addition", [[1, 1], [1, 0], [0, 0], [0, 0]], [0, 0, 1, 0]),
        # 12 + 9 = 21 in base 3, LSB first: (0,1,1) + (0,0,1) -> 0,1,2 (= 21 = 2*9 + 1*3)
        ("Base_3_Addition", [[0, 0], [1, 0], [1, 1]], [0, 1, 2]),
        ("Sum_Last3", [1, 2, 3, 4, 5], [1, 3, 6, 9, 12]),
        ("Prev4", [5, 6, 7, 8, 9, 10], [0, 0, 0, 0, 5, 6]),
        ("Diff_Abs_Values", [-3, 5, -9], [0, 2, 4]),
        ("Majority_0_2", [1, 0, 2, 2, 0], [1, 0, 0, 2, 0]),
        ("Perfect_Square_Detector", [0, 1, 2, 4, 15, 16], [1, 1, 0, 1, 0, 1]),
        # "(())()" is balanced after 4 and 6 symbols
        ("Balanced_Parenthesis", [0, 0, 1, 1, 0, 1], [0, 0, 0, 1, 0, 1]),
        # "())(()": once it goes negative, no later prefix counts as balanced
        ("Balanced_Parenthesis", [0, 1, 1, 0, 0, 1], [0, 1, 0, 0, 0, 0]),
        ("Bit_Palindrome", [1, 0, 1, 1], [1, 0, 1, 0]),
        # steps before the start count as 0, so 0,(1,0) alternates at step 1
        ("Alternating_Last3", [1, 0, 1, 1, 0], [0, 1, 1, 0, 0]),
        # 66 = 1000010 (MSB first) divided by 3 is 22 = 0010110
        ("Div_3", [1, 0, 0, 0, 0, 1, 0], [0, 0, 1, 0, 1, 1, 0]),
        # 154 = 10011010 divided by 7 is 22 = 00010110
        ("Div_7", [1, 0, 0, 1, 1, 0, 1, 0], [0, 0, 0, 1, 0, 1, 1, 0]),
        ("Dithering", [6, 3, 12, 14, 10], [0, 0, 1, 1, 1]),
        ("Parity_Bits_Mod2", [1, 1, 0, 1], [0, 1, 0, 1]),
        ("Newton_Gravity", [0, 3, 0], [-1, 0, 0]),
        ("Newton_Spring", [1, 0, 0, 0], [1, 1, 0, -1]),
    ],
)
def test_hand_checked_values(name, inputs, expected):
    task = get_task(name)
    assert task.reference(inputs) == [[value] for value in expected]
    batch = np.asarray(inputs, dtype=np.int64)[None]
    assert task.outputs(batch)[0, :, 0].tolist() == expected


def test_newton_magnetic_turns_velocity_by_the_lorentz_force():
    task = get_task("Newton_Magnetic")
    # push along x, then coast: the field bends the motion towards +y
    forces = [[1, 0], [0, 0], [0, 0]]
    expected = [[1, 0], [2, 1], [2, 3]]
    assert task.reference(forces) == expected
    assert task.outputs(np.asarray([forces]))[0].tolist() == expected


@pytest.mark.parametrize("dims", [1, 2])
def test_load_task_file_round_trips_npz_and_json(tmp_path, dims):
    task = get_task("Bitwise_And" if dims == 2 else "Sum_Last2")
    inputs, outputs = task.generate(6, seed=5)
    npz = tmp_path / "task.npz"
    np.savez(npz, inputs=inputs, outputs=outputs)
    for loaded, wanted in zip(load_task_file(npz), (inputs, outputs)):
        np.testing.assert_array_equal(loaded, wanted)

    # JSON: one number per step may be written as plain ints.
    def plain(array):
        return array[:, :, 0].tolist() if array.shape[2] == 1 else array.tolist()

    path = tmp_path / "task.json"
    path.write_text(json.dumps({"inputs": plain(inputs), "outputs": plain(outputs)}))
    loaded_inputs, loaded_outputs = load_task_file(str(path))
    assert loaded_inputs.dtype == np.int64 and loaded_inputs.shape == inputs.shape
    np.testing.assert_array_equal(loaded_inputs, inputs)
    np.testing.assert_array_equal(loaded_outputs, outputs)


def test_load_task_file_rejects_inconsistent_lengths_in_one_line(tmp_path):
    path = tmp_path / "bad.json"
    data = {"inputs": [[1, 2, 3], [4, 5, 6], [7, 8, 9]], "outputs": [[1, 2, 3], [4, 5, 6], [7, 8]]}
    path.write_text(json.dumps(data))
    with pytest.raises(DataError) as caught:
        load_task_file(path)
    message = str(caught.value)
    assert "\n" not in message
    assert "sequence 2" in message and "input length 3" in message and "output length 2" in message

    data = {"inputs": [[1, 2, 3], [4, 5]], "outputs": [[1, 2, 3], [4, 5]]}
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"sequence 1 has length 2 but sequence 0 has length 3"):
        load_task_file(path)


def test_load_task_file_reports_missing_or_unreadable_files(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_task_file(tmp_path / "absent.npz")
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="cannot read"):
        load_task_file(broken)
    partial = tmp_path / "partial.npz"
    np.savez(partial, inputs=np.zeros((2, 3), dtype=np.int64))
    with pytest.raises(DataError, match="missing array 'outputs'"):
        load_task_file(partial)
    no_key = tmp_path / "no_key.json"
    no_key.write_text(json.dumps({"inputs": [[1]]}))
    with pytest.raises(DataError, match="missing key 'outputs'"):
        load_task_file(no_key)
    garbled = tmp_path / "garbled.json"
    garbled.write_text("{not json")
    with pytest.raises(DataError, match="cannot read") as caught:
        load_task_file(garbled)
    assert "\n" not in str(caught.value)
    fractional = tmp_path / "fractional.json"
    fractional.write_text(json.dumps({"inputs": [[0.5]], "outputs": [[1]]}))
    with pytest.raises(DataError, match="integers"):
        load_task_file(fractional)


def test_splits_draw_an_untouched_test_set_and_longer_sequences():
    from intelligible.mips.tasks import splits

    data = splits("Sum_Last3", 100, 40, 30, seed=0, n_long=5, long_length=25)
    train_x, _, validation_x, _ = split("Sum_Last3", 100, 40, seed=0)
    np.testing.assert_array_equal(data.train[0], train_x)  # the first two streams are split's
    np.testing.assert_array_equal(data.validation[0], validation_x)
    assert data.test[0].shape == (30, 10, 1) and data.long[0].shape == (5, 25, 1)
    assert not np.array_equal(data.test[0], validation_x[:30])
    np.testing.assert_array_equal(get_task("Sum_Last3").outputs(data.long[0]), data.long[1])
    # the test set does not depend on how much training or validation data was asked for
    np.testing.assert_array_equal(splits("Sum_Last3", 7, 3, 30, seed=0).test[0], data.test[0])
    assert splits("Sum_Last3", 1, 1, 1, seed=0).long is None


def test_family_members_past_the_benchmark_and_their_errors():
    assert get_task("Sum_Last10").length == 20 and get_task("Add_Mod_17").input_dim == 1
    assert "Add_Mod_17" not in task_names()  # the benchmark is still the paper's 62
    with pytest.raises(
        ConfigError, match=r"task 'Parity_Last0': Parity_LastK needs K between 1 and 10000, got 0"
    ):
        get_task("Parity_Last0")
    with pytest.raises(ConfigError, match="or a family member beyond the benchmark such as Sum_Last10"):
        get_task("Foo")
