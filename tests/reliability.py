"""The reliability matrix: each bad input or fault, what graphcl does about it, and the tests that pin it.

`python tests/reliability.py` renders the table below to docs/reliability.md. tests/test_reliability.py fails
when that file differs from `render()` or when a test named here is not collected by pytest, so the page cannot
drift from the tests. A test id is `path::function` (every parametrization of it) or `path::function[id]`.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "reliability.md"

CONFIG = "tests/config/test_config.py"
CLI = "tests/train/test_cli.py"
RUN = "tests/train/test_run.py"
DATA = "tests/data/test_data.py"
VALID = "tests/test_validation.py"
FAULTS = "tests/train/test_faults.py"
MONITOR = "tests/train/test_monitor.py"
REPRODUCE = "tests/train/test_reproduce.py"
MAE = "tests/graph/test_mae_mvgrl.py"
GLM = "tests/graph/test_graph_level_methods.py"

Case = tuple[str, str, tuple[str, ...]]  # (case, expected behaviour, test ids)

SECTIONS: list[tuple[str, list[Case]]] = [
    ("Configs and the command line", [
        ("Malformed YAML (bad syntax, duplicate key, not a mapping)",
         "One line naming the file and the line; exit 2.",
         (f"{CONFIG}::test_malformed_yaml_names_file_and_line", f"{CONFIG}::test_duplicate_key_is_malformed",
          f"{CONFIG}::test_top_level_must_be_a_mapping", f"{CLI}::test_malformed_yaml_names_file")),
        ("Config file missing or unreadable",
         "One line naming the path; exit 2.",
         (f"{CONFIG}::test_missing_file", f"{CONFIG}::test_directory_is_unreadable",
          f"{CLI}::test_missing_config_file_names_path")),
        ("Unknown key (file or override)",
         "`unknown key 'data.nmae' (did you mean 'data.name'?)`; exit 2, nothing written.",
         (f"{CONFIG}::test_unknown_key", f"{CLI}::test_unknown_key_subprocess_exits_2_with_suggestion",
          f"{CLI}::test_config_errors_exit_2_naming_the_key[data.nmae=x-needles0]")),
        ("Unknown `model.params` key of a method",
         "`unknown key 'model.params.tauu' for method 'grace' (did you mean 'tau'?)`; exit 2.",
         (f"{VALID}::test_unknown_method_param_names_a_close_match",)),
        ("Wrong type",
         "`key 'trainer.epochs' expects int, got 'ten'`; exit 2.",
         (f"{CONFIG}::test_wrong_type",
          f"{CLI}::test_config_errors_exit_2_naming_the_key[trainer.epochs=ten-needles1]")),
        ("Malformed override or missing required key",
         "One line quoting the override or naming the key; exit 2.",
         (f"{CONFIG}::test_malformed_override", f"{CONFIG}::test_malformed_override_value",
          f"{CONFIG}::test_missing_required_key")),
        ("Out-of-range trainer / optimiser / evaluation values (negative epochs, lr <= 0, ratios, seeds)",
         "`key 'trainer.epochs' must be >= 1, got -3`; exit 2.",
         (f"{CONFIG}::test_out_of_range", f"{CONFIG}::test_split_ratios_must_leave_a_test_split",
          f"{CLI}::test_config_errors_exit_2_naming_the_key[optim.lr=-1-needles3]")),
        ("Out-of-range method hyper-parameters: temperature <= 0, drop / mask rates outside [0, 1), momentum "
         "outside [0, 1], bad pools and views",
         "Rejected when the method is built, before any training and before the directory becomes a run: "
         "`key 'model.params.tau' must be > 0, got -1`; exit 2. From Python: `ArgumentError` (a `ValueError`) "
         "naming the argument.",
         (f"{VALID}::test_method_hyperparameters_are_checked_when_built",
          f"{VALID}::test_method_constructors_name_the_argument",
          f"{VALID}::test_bad_hyperparameter_exits_2_before_training")),
        ("`model.init: xavier_uniform` for a method with a momentum target (BGRL, BYOL, MoCo, DINO), whose "
         "target was copied from the online network when built",
         "`key 'model.init' is 'xavier_uniform', but BGRL holds a momentum target ...`; exit 2, before the "
         "directory becomes a run.",
         (f"{RUN}::test_xavier_uniform_init_is_refused_where_a_momentum_target_was_copied",
          f"{VALID}::test_init_a_momentum_method_cannot_take_exits_2_before_training")),
        ("A method name that does not exist",
         "Names it and the closest method (`did you mean 'dgi'`); exit 2, no run directory.",
         (f"{CLI}::test_unknown_method_exits_2_and_suggests_dgi",)),
        ("An encoder name that does not exist",
         "`key 'model.encoder.name' must be one of gcn, ...; got 'gcnn' (did you mean 'gcn'?)`; exit 2.",
         (f"{CONFIG}::test_choice_fields",
          f"{CLI}::test_config_errors_exit_2_naming_the_key[model.encoder.name=gcnn-needles4]")),
        ("A dataset name that does not exist",
         "`key 'data.name': unknown dataset 'coraa' (did you mean 'cora'?)`; exit 2.",
         (f"{DATA}::test_unknown_name_suggests_a_close_one",
          f"{VALID}::test_unknown_dataset_exits_2_with_a_close_match")),
        ("`--resume` with a config or overrides (but seeds=[...] extending the run's seeds), or without a "
         "checkpoint",
         "One line saying what `--resume` needs (or which seeds the run has); exit 2; the run untouched.",
         (f"{CLI}::test_resume_with_overrides_is_bad_usage", f"{CLI}::test_resume_without_checkpoint_is_bad_usage",
          f"{CLI}::test_resume_appends_seeds_to_a_finished_run")),
        ("A malformed suite records file (`docs/records/<suite>.json`) or `baselines.json`",
         "One line naming the file; nothing trained, the results page untouched.",
         (f"{REPRODUCE}::test_malformed_records_file_is_a_one_line_config_error[{{]",
          f"{REPRODUCE}::test_malformed_baselines_file_is_a_one_line_config_error[{{not json]")),
        ("Settings an encoder cannot combine (`norm_last` without a norm, `shared_act: false` with a norm that "
         "takes the batch, `mol_gin` with an output activation), a warm-up without the cosine schedule",
         "One line naming the key; exit 2.",
         (f"{MAE}::test_warmup_and_norm_last_need_their_companions[model.encoder.norm_last=true-model.encoder.norm_last]",
          f"{MAE}::test_warmup_and_norm_last_need_their_companions[optim.warmup_epochs=3-optim.warmup_epochs]",
          f"{GLM}::test_mol_gin_reads_bond_features_in_training_views_and_embeddings",
          "tests/graph/test_encoders_views.py::test_own_activations_rejects_what_pyg_orders_otherwise")),
    ]),
    ("Datasets", [
        ("Dataset folder missing",
         "Within a second, one line listing the files expected and the folder; never downloads or prompts; exit 2.",
         (f"{CLI}::test_missing_dataset_fails_fast_naming_files",
          f"{DATA}::test_missing_dataset_fails_fast_naming_files_and_folder",
          f"{DATA}::test_missing_dataset_under_the_env_root")),
        ("Some raw files missing",
         "Names only the missing files (an OGB folder without its release marker too, without prompting).",
         (f"{DATA}::test_partial_raw_dir_names_only_the_missing_files",
          f"{DATA}::test_ogb_folder_without_release_marker_fails_without_prompting")),
        ("A raw file truncated or corrupted",
         "Names the file the loader failed on; the processed cache of the intact file is never served; exit 2.",
         (f"{DATA}::test_corrupt_raw_file_is_named_and_never_served_from_the_cache",
          f"{VALID}::test_truncated_raw_file_exits_2_naming_it")),
        ("Read-only data root",
         "Works; processed files go to the cache, nothing is written under the root.",
         (f"{RUN}::test_read_only_data_root", f"{DATA}::test_read_only_root_is_never_written")),
        ("Several processes loading a dataset into a fresh cache at once (parallel trainings, the examples)",
         "One processes it under the dataset's lock; the others wait and load what it wrote, never half-written "
         "files.",
         (f"{DATA}::test_one_process_at_a_time_processes_a_dataset",)),
        ("An empty dataset",
         "`the dataset is empty: it holds no graphs`, before training.",
         (f"{VALID}::test_empty_dataset_is_named",)),
        ("An empty split (no train / val / test nodes, random ratios too small, one class, one node)",
         "Named before training (`data.val_mask selects no nodes: the val split is empty`).",
         (f"{VALID}::test_empty_splits_are_named_before_training",
          "tests/evaluate/test_probes.py::test_linear_probe_rejects_bad_input[change2-val split is empty]")),
        ("Graph labels of a single class, or fewer graphs of a class than `eval.folds`",
         "`eval.folds is 100 but class 0 of dataset 'MUTAG' has only 63 graphs; ...`, before training; exit 2.",
         (f"{VALID}::test_too_many_folds_for_a_class_exits_2",
          f"{VALID}::test_graph_labels_need_two_classes_and_enough_graphs_per_fold")),
        ("A batch size larger than the dataset",
         "`key 'data.batch_size' is 500 but dataset 'MUTAG' has only 188 graphs`, before training; exit 2.",
         ("tests/graph/test_graph_level.py::test_graph_task_batches_cover_the_dataset_once",
          f"{VALID}::test_batch_size_larger_than_the_dataset_exits_2")),
        ("Labels missing where a probe needs them (node `y`, split masks, graph `y`)",
         "Named before training, with the protocol that needs them and the alternative (`eval.protocol=random`).",
         (f"{VALID}::test_missing_labels_are_named_before_training",
          "tests/evaluate/test_probes.py::test_node_splits_public_names_missing_mask",
          "tests/evaluate/test_probes.py::test_linear_probe_rejects_bad_input[change0-labels are required]")),
    ]),
    ("User graphs (`graphcl.pretrain`, `train_run(dataset=...)`)", [
        ("`edge_index` with an out-of-range or negative node id",
         "`data.edge_index holds node id 60, but data has 60 nodes`, before the directory becomes a run; in a "
         "dataset of graphs the graph is named (`dataset[2].edge_index ...`).",
         (f"{VALID}::test_bad_graphs_are_named_in_one_line[edge_index-out_of_range]",
          f"{VALID}::test_bad_graphs_are_named_in_one_line[edge_index-negative]",
          f"{VALID}::test_pretrain_checks_the_graph_before_the_directory_becomes_a_run",
          f"{VALID}::test_graph_level_datasets_are_checked_graph_by_graph")),
        ("`edge_index` of the wrong dtype",
         "`data.edge_index has dtype torch.float32; it must be torch.long (...)`.",
         (f"{VALID}::test_bad_graphs_are_named_in_one_line[edge_index-float]",
          f"{VALID}::test_bad_graphs_are_named_in_one_line[edge_index-int32]")),
        ("`edge_index` of the wrong shape or missing",
         "`data.edge_index has shape [3, 2]; it must be [2, num_edges] (transpose it: data.edge_index.t())`.",
         (f"{VALID}::test_bad_graphs_are_named_in_one_line[edge_index-transposed]",
          f"{VALID}::test_bad_graphs_are_named_in_one_line[edge_index-three_rows]",
          f"{VALID}::test_bad_graphs_are_named_in_one_line[edge_index-1d]",
          f"{VALID}::test_bad_graphs_are_named_in_one_line[edge_index-missing]")),
        ("Features with NaN or Inf (dense or sparse)",
         "`data.x holds 1 non-finite value(s), NaN among them (first at index (3, 4))`, before training.",
         (f"{VALID}::test_bad_graphs_are_named_in_one_line[x-nan]",
          f"{VALID}::test_bad_graphs_are_named_in_one_line[x-inf]",
          f"{VALID}::test_sparse_features_with_nan_are_caught")),
        ("Features missing, not 2-D, not floating point, without columns; labels, masks or edge weights of the "
         "wrong length; graphs of different feature widths; several graphs for a node-level method",
         "One line naming the field, its shape or dtype and what it must be.",
         (f"{VALID}::test_bad_graphs_are_named_in_one_line[x-missing]",
          f"{VALID}::test_bad_graphs_are_named_in_one_line[x-1d]",
          f"{VALID}::test_bad_graphs_are_named_in_one_line[x-integer]",
          f"{VALID}::test_bad_graphs_are_named_in_one_line[x-no_columns]",
          f"{VALID}::test_bad_graphs_are_named_in_one_line[y-wrong_rows]",
          f"{VALID}::test_bad_graphs_are_named_in_one_line[edge_weight-wrong_shape]",
          f"{VALID}::test_graph_level_datasets_are_checked_graph_by_graph")),
        ("Isolated nodes, self-loops, duplicate edges, no edges at all (node level: DGI, GRACE)",
         "Work: train, evaluate and give finite embeddings.",
         (f"{VALID}::test_degenerate_graphs_train_and_evaluate",)),
        ("A single node",
         "Node level: DGI and GRACE train on it (finite loss and gradients, a [1, D] embedding); `pretrain` says "
         "the probe has no validation split. Graph level: GraphCL trains and evaluates on datasets with "
         "single-node and edgeless graphs, self-loops and duplicate edges.",
         (f"{VALID}::test_node_methods_train_on_a_single_node",
          f"{VALID}::test_empty_splits_are_named_before_training[single_node]",
          f"{VALID}::test_graphcl_trains_and_evaluates_on_single_node_and_edgeless_graphs")),
        ("Bad tensors passed to the losses, probes, memory bank and queue",
         "`ValueError` naming the function, the argument and its shape or value.",
         ("tests/core/test_losses.py::test_bad_input_raises_value_error_naming_the_argument",
          "tests/evaluate/test_probes.py::test_linear_probe_rejects_bad_input",
          "tests/evaluate/test_probes.py::test_linear_probe_rejects_non_finite_embeddings",
          "tests/core/test_memory.py::test_bank_validation", "tests/core/test_memory.py::test_queue_validation")),
    ]),
    ("Run directories and checkpoints", [
        ("An output directory that already holds a run",
         "Refused, naming the directory, unless `--overwrite` (replaces it) or `--resume` (continues it); "
         "nothing in it is touched; exit 2.",
         (f"{CLI}::test_second_train_without_overwrite_refuses", f"{CLI}::test_train_with_overwrite_replaces_run")),
        ("A read-only output directory (or one that cannot be created)",
         "`output directory ... is not writable` / `cannot create output directory ...: Permission denied`; exit 2.",
         (f"{FAULTS}::test_read_only_output_directory_exits_2",)),
        ("Two runs pointed at the same output directory",
         "The second is refused while the first lives, whatever its mode: `run directory ... is in use by process "
         "<pid> (lock file .../.lock)`; nothing is touched. A dead process's lock is taken over.",
         (f"{FAULTS}::test_two_runs_on_one_directory_cannot_interleave", f"{RUN}::test_live_lock_blocks_train",
          f"{RUN}::test_live_lock_blocks_resume", f"{RUN}::test_stale_lock_does_not_block_resume")),
        ("A corrupted or truncated checkpoint (truncated, bits flipped in tensor data, empty, another kind of file)",
         "`corrupted or truncated checkpoint file <path>: ...` (CRC-32 checked: a damaged tensor never loads as "
         "wrong numbers); exit 2, the directory untouched.",
         (f"{FAULTS}::test_damaged_checkpoint_exits_2_naming_the_file",)),
        ("A checkpoint from another method (copied over from another run)",
         "`<checkpoint> was written by a run with model.method 'grace', but <config.yaml> has model.method 'dgi'"
         ": ...`; exit 2.",
         (f"{FAULTS}::test_checkpoint_of_another_method_is_refused",)),
    ]),
    ("Faults", [
        ("SIGKILL during an epoch (before the first checkpoint, mid-run, in a later seed, at a random step; "
         "twice in a row; real `graphcl train` processes killed twice)",
         "Nothing half-written under a final name; `--resume` (or `--overwrite` before any checkpoint) ends with "
         "exactly the results, weights and metrics of an uninterrupted run.",
         (f"{FAULTS}::test_sigkill_then_resume_equals_uninterrupted[step-1-before-any-checkpoint]",
          f"{FAULTS}::test_sigkill_then_resume_equals_uninterrupted[step-3-mid-epoch]",
          f"{FAULTS}::test_sigkill_then_resume_equals_uninterrupted[step-6-second-seed]",
          f"{FAULTS}::test_sigkill_then_resume_equals_uninterrupted[random-step]",
          f"{FAULTS}::test_killed_twice_then_resumed_equals_uninterrupted",
          f"{RUN}::test_kill_points_are_mid_run", f"{RUN}::test_resumed_run_equals_uninterrupted",
          f"{RUN}::test_resumed_metrics_have_one_line_per_epoch")),
        ("SIGKILL during a checkpoint write (the first, a later one, after a seed's evaluation, a random one)",
         "The previous checkpoint stays intact and loadable; the half-written temporary is removed on resume; "
         "results equal an uninterrupted run.",
         (f"{FAULTS}::test_sigkill_then_resume_equals_uninterrupted[checkpoint-write-1-no-previous]",
          f"{FAULTS}::test_sigkill_then_resume_equals_uninterrupted[checkpoint-write-2]",
          f"{FAULTS}::test_sigkill_then_resume_equals_uninterrupted[checkpoint-write-3-seed-done]",
          f"{FAULTS}::test_sigkill_then_resume_equals_uninterrupted[random-checkpoint-write]")),
        ("SIGKILL mid-line in metrics.jsonl, during evaluation, while writing encoder.pt or results.json, at "
         "random times",
         "The cut line is dropped on resume; every other file is whole; results equal an uninterrupted run.",
         (f"{FAULTS}::test_sigkill_then_resume_equals_uninterrupted[metrics-line-5]",
          f"{FAULTS}::test_sigkill_then_resume_equals_uninterrupted[evaluation-seed-0]",
          f"{FAULTS}::test_sigkill_then_resume_equals_uninterrupted[encoder-write]",
          f"{FAULTS}::test_sigkill_then_resume_equals_uninterrupted[results-write]",
          f"{FAULTS}::test_sigkill_then_resume_equals_uninterrupted[random-time-a]",
          f"{FAULTS}::test_sigkill_then_resume_equals_uninterrupted[random-time-b]")),
        ("A checkpoint (or config) write that fails: disk full",
         "`could not write <path>/checkpoint.pt: No space left on device; any previous checkpoint.pt is left as it "
         "was`; exit 1; the previous checkpoint loads, no temporary is left, the lock is released, and a resume "
         "ends as an uninterrupted run.",
         (f"{FAULTS}::test_failed_checkpoint_write_keeps_the_previous_checkpoint",
          f"{FAULTS}::test_failed_checkpoint_write_exits_1_naming_the_file",
          f"{CONFIG}::test_failed_save_keeps_old_file_and_no_temp")),
    ]),
    ("Numerical guards", [
        ("NaN or Inf in the loss",
         "The run stops: `non-finite loss nan at epoch 3, step 1` (with the loss terms of methods that record "
         "them); exit 1; the last checkpoint is finite and resumable.",
         (f"{RUN}::test_nan_loss_exits_1_naming_epoch_and_step",
          f"{RUN}::test_diverging_run_exits_1_naming_epoch_and_step",
          f"{RUN}::test_nan_loss_raises_in_process", f"{FAULTS}::test_nonfinite_loss_reports_the_loss_terms")),
        ("NaN or Inf in the gradients (with a finite loss)",
         "The run stops before the optimiser step: `non-finite gradient of discriminator.weight at epoch 3, step 1, "
         "loss 0.69...`; the last checkpoint is finite.",
         (f"{FAULTS}::test_nonfinite_gradient_stops_naming_parameter_epoch_and_step",)),
        ("Collapse of a non-contrastive method (per-dimension std below `trainer.collapse_std / sqrt(D)`)",
         "A `warning` in that epoch's metrics.jsonl line; training goes on.",
         (f"{MONITOR}::test_collapsed_encoders_are_flagged_and_a_spread_one_is_not",
          f"{MONITOR}::test_collapse_threshold_scales_with_the_dimension",
          f"{MONITOR}::test_runs_log_diagnostics_every_k_epochs_and_at_the_end")),
    ]),
]

HEADER = """# Reliability: bad input and faults

<!-- Generated by `python tests/reliability.py` from the table in tests/reliability.py; do not edit by hand.
     tests/test_reliability.py fails when this page and the table differ or a listed test does not exist. -->

What graphcl does with each bad input and fault it is tested against, and the tests that pin it. User mistakes
are one line on stderr naming the offending key, file, field, shape or value, never a traceback alone; the CLI
exits with status 2 for bad usage, configs and input files (datasets, graphs, checkpoints) and 1 for failures
of the run itself (a non-finite loss, a full disk). Set `GRAPHCL_DEBUG=1` to see the traceback behind a line.
Runs write every file atomically (a temporary, fsync, rename), so a kill at any moment leaves the previous
version of each file, and a resumed run ends exactly as an uninterrupted one.
"""


def listed_ids() -> list[str]:
    """Every test id of the table, in order, without repeats."""
    seen: dict[str, None] = {}
    for _, cases in SECTIONS:
        for _, _, ids in cases:
            seen.update(dict.fromkeys(ids))
    return list(seen)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render() -> str:
    lines = [HEADER]
    for title, cases in SECTIONS:
        lines += [f"## {title}", "", "| Case | Expected behaviour | Pinned by |", "| --- | --- | --- |"]
        for case, expected, ids in cases:
            tests = "<br>".join(f"`{_cell(i)}`" for i in ids)
            lines.append(f"| {_cell(case)} | {_cell(expected)} | {tests} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    DOC.write_text(render(), encoding="utf-8")
    print(f"wrote {DOC.relative_to(ROOT)} ({sum(len(c) for _, c in SECTIONS)} cases)", file=sys.stderr)
