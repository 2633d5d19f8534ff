# ruff: noqa: E501
"""Every end-to-end test, accounted for: ``MIRRORED`` names, for each one that checks a
rule of ``podd.core``, the table tests that check the same rule; ``IO_ONLY`` says, for
each of the others, what it checks that only the runtime or the system can.
``TestAccounting`` holds the two to every end-to-end test there is."""

from __future__ import annotations

import ast
import pathlib

MIRRORED: dict[str, list[str]] = {
    "tests/e2e/test_orchestration.py::TestAfter::test_after_naming_a_grandchild_is_exit_3": [
        "tests/core/test_machine.py::TestSpawning::test_what_the_books_forbid_is_answered_and_nothing_reserved",
    ],
    "tests/e2e/test_orchestration.py::TestAfter::test_after_naming_no_child_is_exit_3": [
        "tests/core/test_machine.py::TestSpawning::test_what_the_books_forbid_is_answered_and_nothing_reserved",
    ],
    "tests/e2e/test_cli.py::TestTree::test_spawn_ls_status_stop": [
        "tests/core/e2e_rules/test_cli.py::TestCli::test_children_and_a_grandchild_are_registered_with_the_sockets_of_their_reporters",
        "tests/core/e2e_rules/test_smoke.py::TestSmoke::test_an_idle_tree_stops_clean_once_its_children_said_shut_down",
    ],
    "tests/e2e/test_cli.py::TestBadNames::test_refused_by_a_parent_pod_that_keeps_its_registry": [
        "tests/core/e2e_rules/test_trust.py::TestTrust::test_a_name_breaking_the_rule_is_refused_naming_the_rule",
        "tests/core/e2e_rules/test_trust.py::TestTrust::test_a_name_the_rule_allows_is_accepted",
    ],
    "tests/e2e/test_event_stream.py::TestFeed::test_a_subscriber_gets_every_event_the_parent_applied_in_order": [
        "tests/core/e2e_rules/test_event_stream.py::TestEventStream::test_events_of_two_children_are_noted_once_each_in_the_order_applied",
        "tests/core/test_machine.py::TestSpawning::test_a_ready_child_is_registered_reported_and_answered",
    ],
    "tests/e2e/test_event_stream.py::TestFeed::test_without_follow_the_reply_is_the_recent_events": [
        "tests/core/e2e_rules/test_event_stream.py::TestEventStream::test_events_of_two_children_are_noted_once_each_in_the_order_applied",
    ],
    "tests/e2e/test_events.py::TestThreeLevels::test_root_registers_the_grandchild_silently": [
        "tests/core/e2e_rules/test_events.py::TestEvents::test_a_sub_delegation_registers_the_grandchild_under_its_reporter_silently",
    ],
    "tests/e2e/test_events.py::TestThreeLevels::test_parent_hears_of_the_grandchild_turn_and_stop": [
        "tests/core/e2e_rules/test_events.py::TestEvents::test_a_childs_turn_and_shut_down_are_noted_and_the_shut_down_forgets_it",
    ],
    "tests/e2e/test_events.py::TestThreeLevels::test_root_forgets_a_stopped_grandchild_without_an_error": [
        "tests/core/e2e_rules/test_events.py::TestEvents::test_a_grandchild_reclaimed_as_stopped_is_noted_as_shut_down_not_as_an_error",
        "tests/core/test_machine.py::TestChildren::test_a_clean_reclaim_says_shut_down",
    ],
    "tests/e2e/test_events.py::TestForgedEvents::test_from_the_test_process": [
        "tests/core/e2e_rules/test_events.py::TestEvents::test_an_event_not_from_its_pods_process_is_forbidden_and_changes_nothing",
    ],
    "tests/e2e/test_events.py::TestForgedEvents::test_from_a_sibling_pod": [
        "tests/core/e2e_rules/test_events.py::TestEvents::test_an_event_not_from_its_pods_process_is_forbidden_and_changes_nothing",
    ],
    "tests/e2e/test_events.py::TestReplays::test_duplicates_apply_once": [
        "tests/core/e2e_rules/test_events.py::TestEvents::test_a_replayed_event_is_applied_once_and_a_sub_delegation_registers_once",
        "tests/core/e2e_rules/test_events.py::TestEvents::test_a_sub_delegation_registers_the_grandchild_under_its_reporter_silently",
    ],
    "tests/e2e/test_events.py::TestReplays::test_late_events_after_shut_down_resurrect_nothing": [
        "tests/core/e2e_rules/test_events.py::TestEvents::test_events_after_a_shut_down_are_acknowledged_unapplied_and_resurrect_nothing",
    ],
    "tests/e2e/test_events.py::TestStoppedParent::test_sigstopped_parent_loses_nothing": [
        "tests/core/e2e_rules/test_events.py::TestEvents::test_every_turn_of_two_children_is_noted_once_however_often_it_is_resent",
    ],
    "tests/e2e/test_liveness.py::TestChildDeath::test_sigkilled_child_is_reclaimed_by_its_exit_not_a_sweep": [
        "tests/core/e2e_rules/test_liveness.py::TestLiveness::test_a_killed_child_is_reclaimed_named_by_its_signal_and_gives_its_scope_back",
    ],
    "tests/e2e/test_liveness.py::TestAdoption::test_grandchild_is_adopted_by_root_and_reports_there": [
        "tests/core/e2e_rules/test_liveness.py::TestLiveness::test_a_grandchild_whose_parent_died_is_adopted_and_reports_here",
        "tests/core/e2e_rules/test_liveness.py::TestLiveness::test_a_pod_whose_parent_died_asks_its_ancestors_and_reports_to_its_adopter",
    ],
    "tests/e2e/test_liveness.py::TestTreeKill::test_no_process_of_the_tree_outlives_its_root": [
        "tests/core/e2e_rules/test_liveness.py::TestLiveness::test_an_orphan_no_ancestor_adopts_stops_its_subtree",
        "tests/core/test_liveness.py::TestParentDeath::test_orphan_stops_itself",
    ],
    "tests/e2e/test_liveness.py::TestUnresponsive::test_sigstopped_child_is_unresponsive_and_kept": [
        "tests/core/test_probing.py::TestVerdict::test_silent_with_its_process_there_is_unresponsive",
        "tests/core/test_probing.py::TestVerdict::test_an_answer_is_alive_without_looking_at_the_process",
    ],
    "tests/e2e/test_liveness.py::TestStaleAndReclaim::test_dead_grandchild_is_reclaimed_from_the_root_registry": [
        "tests/core/e2e_rules/test_liveness.py::TestLiveness::test_a_dead_grandchild_is_reclaimed_alone_and_noted_as_an_error",
        "tests/core/test_probing.py::TestVerdict::test_silent_with_its_process_gone_is_dead",
    ],
    "tests/e2e/test_liveness.py::TestStaleAndReclaim::test_root_reports_a_killed_grandchild_as_a_crash": [
        "tests/core/e2e_rules/test_liveness.py::TestLiveness::test_a_dead_grandchild_is_reclaimed_alone_and_noted_as_an_error",
    ],
    "tests/e2e/test_llm_pods.py::TestClaudeSessions::test_turns_resume_one_session": [
        "tests/core/e2e_rules/test_llm_pods.py::TestLlmPods::test_the_session_a_turn_reports_is_kept_and_a_send_may_ask_for_a_new_one",
    ],
    "tests/e2e/test_llm_pods.py::TestClaudeSessions::test_new_session_from_the_cli": [
        "tests/core/e2e_rules/test_llm_pods.py::TestLlmPods::test_the_session_a_turn_reports_is_kept_and_a_send_may_ask_for_a_new_one",
    ],
    "tests/e2e/test_llm_pods.py::TestTurnRecords::test_a_long_result_is_cut_at_64_kib": [
        "tests/core/e2e_rules/test_llm_pods.py::TestLlmPods::test_a_summary_is_the_first_500_characters_of_the_result_on_one_line",
        "tests/core/test_turns.py::TestRecords::test_summary_collapses_whitespace_and_cuts",
    ],
    "tests/e2e/test_llm_pods.py::TestResults::test_results_and_totals": [
        "tests/core/e2e_rules/test_llm_pods.py::TestLlmPods::test_costs_and_usage_add_up_and_wait_answers_the_last_record",
    ],
    "tests/e2e/test_llm_pods.py::TestNotifications::test_parent_reads_the_child_turn": [
        "tests/core/e2e_rules/test_llm_pods.py::TestLlmPods::test_a_childs_turn_is_one_line_read_by_the_parents_next_turn",
        "tests/core/test_machine.py::TestTurnDone::test_the_effects_of_a_finished_turn_in_order",
    ],
    "tests/e2e/test_llm_pods.py::TestNotifications::test_codex_input_is_framed_too": [
        "tests/core/e2e_rules/test_llm_pods.py::TestLlmPods::test_a_childs_turn_is_one_line_read_by_the_parents_next_turn",
        "tests/core/test_machine.py::TestTask::test_the_task_begins_when_due",
    ],
    "tests/e2e/test_llm_pods.py::TestInput::test_empty_input_is_refused": [
        "tests/core/e2e_rules/test_llm_pods.py::TestLlmPods::test_an_empty_input_is_refused_for_an_llm_agent",
    ],
    "tests/e2e/test_mcp.py::TestTree::test_spawn_send_notify_refuse_stop": [
        "tests/core/e2e_rules/test_mcp.py::TestMcp::test_reading_the_notifications_drains_them",
        "tests/core/test_scope.py::TestCheckDelegation::test_uncovered_rules_are_refused",
        "tests/core/e2e_rules/test_smoke.py::TestSmoke::test_an_idle_tree_stops_clean_once_its_children_said_shut_down",
    ],
    "tests/e2e/test_mcp.py::TestTurnRecords::test_send_wait_returns_the_record_even_of_an_errored_turn": [
        "tests/core/e2e_rules/test_mcp.py::TestMcp::test_send_wait_is_answered_with_the_record_of_an_errored_turn",
        "tests/core/e2e_rules/test_orchestration.py::TestOrchestration::test_a_loop_task_is_one_work_item_with_one_event_upward",
    ],
    "tests/e2e/test_mcp.py::TestTurnRecords::test_wait_for_pod_returns_the_task_record": [
        "tests/core/e2e_rules/test_mcp.py::TestMcp::test_wait_during_the_task_is_answered_with_its_record",
    ],
    "tests/e2e/test_mcp.py::TestTurnRecords::test_send_queue_queues_behind_a_running_turn": [
        "tests/core/e2e_rules/test_mcp.py::TestMcp::test_a_busy_pod_refuses_a_plain_send_and_queues_one_that_asks",
    ],
    "tests/e2e/test_orchestration.py::TestQueue::test_higher_priority_runs_first_fifo_within": [
        "tests/core/e2e_rules/test_orchestration.py::TestOrchestration::test_queued_sends_run_by_priority_then_arrival_and_an_idle_pod_runs_one_at_once",
    ],
    "tests/e2e/test_orchestration.py::TestQueue::test_queue_holds_at_most_1000_turns": [
        "tests/core/e2e_rules/test_orchestration.py::TestOrchestration::test_the_queue_takes_1000_sends_in_positions_1_to_1000_and_refuses_more",
        "tests/core/test_machine.py::TestSend::test_a_full_queue_is_refused",
    ],
    "tests/e2e/test_orchestration.py::TestQueue::test_queue_is_restored_by_restart": [
        "tests/core/e2e_rules/test_orchestration.py::TestOrchestration::test_a_restored_pod_begins_its_highest_queued_item_when_due",
    ],
    "tests/e2e/test_orchestration.py::TestQueue::test_restored_queue_runs_after_restart": [
        "tests/core/e2e_rules/test_orchestration.py::TestOrchestration::test_a_restored_queue_runs_in_order_and_its_turn_numbers_go_on",
    ],
    "tests/e2e/test_orchestration.py::TestQueue::test_stop_drain_finishes_the_turn_and_discards_the_queue": [
        "tests/core/test_machine.py::TestStop::test_drain_drops_the_queue_and_answers_its_waiters",
    ],
    "tests/e2e/test_orchestration.py::TestLoop::test_loop_finishes_on_its_third_iteration": [
        "tests/core/e2e_rules/test_orchestration.py::TestOrchestration::test_a_loop_task_is_one_work_item_with_one_event_upward",
        "tests/core/test_turns.py::TestLoopVerdict::test_verdicts",
    ],
    "tests/e2e/test_orchestration.py::TestLoop::test_loop_endings_error_once_each": [
        "tests/core/e2e_rules/test_orchestration.py::TestOrchestration::test_a_loop_stops_at_its_iteration_limit_or_when_blocked",
        "tests/core/e2e_rules/test_orchestration.py::TestOrchestration::test_an_errored_work_item_goes_upward_once_with_its_message",
        "tests/core/test_turns.py::TestLoopVerdict::test_verdicts",
    ],
    "tests/e2e/test_orchestration.py::TestGate::test_gate_decides_whether_the_turn_finishes": [
        "tests/core/e2e_rules/test_orchestration.py::TestOrchestration::test_an_errored_work_item_goes_upward_once_with_its_message",
        "tests/core/e2e_rules/test_orchestration.py::TestOrchestration::test_a_loop_task_is_one_work_item_with_one_event_upward",
    ],
    "tests/e2e/test_orchestration.py::TestAfter::test_task_runs_once_every_prerequisite_finished": [
        "tests/core/e2e_rules/test_orchestration.py::TestOrchestration::test_a_siblings_task_is_released_once_every_prerequisite_finished_a_turn",
        "tests/core/e2e_rules/test_orchestration.py::TestOrchestration::test_a_task_after_siblings_waits_for_its_parent_and_wait_gets_its_record",
    ],
    "tests/e2e/test_orchestration.py::TestAfter::test_deps_leaves_a_task_waiting_for_a_slot_alone": [
        "tests/core/e2e_rules/test_orchestration.py::TestOrchestration::test_deps_has_no_say_over_a_task_waiting_for_a_slot",
    ],
    "tests/e2e/test_orchestration.py::TestAfter::test_ls_says_what_a_pod_waits_on": [
        "tests/core/e2e_rules/test_orchestration.py::TestOrchestration::test_a_task_after_siblings_waits_for_its_parent_and_wait_gets_its_record",
    ],
    "tests/e2e/test_orchestration.py::TestAfter::test_task_skipped_when_a_prerequisite_errors_or_ends_first": [
        "tests/core/e2e_rules/test_orchestration.py::TestOrchestration::test_a_prerequisite_ending_before_a_turn_skips_the_task_and_says_so",
        "tests/core/test_machine.py::TestNotifications::test_a_sibling_erroring_skips_the_waiting_task_and_says_so",
        "tests/core/test_machine.py::TestTask::test_a_skipped_task_never_runs",
    ],
    "tests/e2e/test_orchestration.py::TestAfter::test_task_skipped_when_the_parent_dies_while_it_waits": [
        "tests/core/test_machine.py::TestTask::test_a_task_waiting_when_the_parent_dies_is_skipped_and_told_to_the_adopter",
        "tests/core/test_machine.py::TestTask::test_a_parent_death_leaves_other_work_alone",
        "tests/core/test_liveness.py::TestOnAdopt::test_a_task_the_asker_skipped_is_told_after_its_adoption",
    ],
    "tests/e2e/test_orchestration.py::TestMaxRunning::test_turns_in_the_subtree_never_overlap": [
        "tests/core/e2e_rules/test_orchestration.py::TestOrchestration::test_a_pod_below_a_limit_takes_a_slot_from_the_holder_above_before_each_turn",
        "tests/core/test_machine.py::TestSend::test_a_pod_under_a_limit_waits_for_slots_first",
    ],
    "tests/e2e/test_orchestration.py::TestWait::test_exit_statuses_and_json": [
        "tests/core/e2e_rules/test_orchestration.py::TestOrchestration::test_wait_on_an_idle_pod_answers_its_last_record",
        "tests/core/e2e_rules/test_orchestration.py::TestOrchestration::test_wait_on_a_running_pod_waits",
    ],
    "tests/e2e/test_orchestration.py::TestWait::test_wait_covers_the_queue": [
        "tests/core/test_machine.py::TestTurnDone::test_wait_is_answered_once_nothing_runs_or_is_queued",
    ],
    "tests/e2e/test_orchestration.py::TestCompletionRecord::test_record_after_stop": [
        "tests/core/e2e_rules/test_orchestration.py::TestOrchestration::test_the_count_last_record_and_cost_of_the_completion_record_are_kept",
    ],
    "tests/e2e/test_orchestration.py::TestCompletionRecord::test_record_after_sigkill_and_reclaim": [
        "tests/core/e2e_rules/test_orchestration.py::TestOrchestration::test_each_turn_journals_the_count_the_last_record_and_the_totals",
    ],
    "tests/e2e/test_restart.py::TestRestartAfterKill::test_child_restarted_through_its_parent": [
        "tests/core/e2e_rules/test_restart.py::TestRestart::test_a_child_restarted_as_its_next_incarnation_is_registered_and_heard_again",
    ],
    "tests/e2e/test_restart.py::TestOldIncarnation::test_turn_ended_of_an_older_incarnation_is_a_duplicate": [
        "tests/core/e2e_rules/test_restart.py::TestRestart::test_a_turn_ended_of_an_older_incarnation_is_not_applied",
        "tests/core/test_events.py::TestIdempotence::test_a_new_incarnation_starts_its_own_sequence",
    ],
    "tests/e2e/test_restart.py::TestOldIncarnation::test_shut_down_of_an_older_incarnation_removes_nothing": [
        "tests/core/e2e_rules/test_restart.py::TestRestart::test_a_shut_down_of_an_older_incarnation_removes_nothing",
    ],
    "tests/e2e/test_restart.py::TestOldIncarnation::test_the_current_and_a_newer_incarnation_are_applied": [
        "tests/core/e2e_rules/test_restart.py::TestRestart::test_the_current_and_a_newer_incarnation_are_applied",
        "tests/core/test_events.py::TestIdempotence::test_a_new_incarnation_starts_its_own_sequence",
    ],
    "tests/e2e/test_restart.py::TestRestartAfterAdoption::test_children_adopted_meanwhile_report_to_the_restarted_pod": [
        "tests/core/test_liveness.py::TestRejoin::test_the_restarted_pod_asks_back_its_children_found_elsewhere",
        "tests/core/test_liveness.py::TestRejoin::test_a_child_goes_back_to_the_pod_that_spawned_it",
        "tests/core/test_liveness.py::TestRejoin::test_a_child_back_is_watched_and_reported_up",
        "tests/core/test_liveness.py::TestRejoin::test_the_adopter_moves_it_back_under_the_pod_that_spawned_it",
    ],
    "tests/e2e/test_restart.py::TestRestartAfterAdoption::test_writes_held_below_do_not_keep_the_restart_out": [
        "tests/core/test_machine.py::TestSpawning::test_a_restart_may_take_back_the_writes_of_what_it_spawned",
        "tests/core/test_machine.py::TestSpawning::test_a_new_pod_of_the_name_gets_no_such_pass",
    ],
    "tests/e2e/test_restart.py::TestRestartPolicy::test_on_failure_backs_off_then_gives_up": [
        "tests/core/e2e_rules/test_restart.py::TestRestart::test_a_crashing_on_failure_child_is_restarted_with_growing_delays_then_given_up",
        "tests/core/e2e_rules/test_restart.py::TestRestart::test_a_never_child_is_reclaimed_and_not_restarted",
        "tests/core/test_children.py::TestRestartPolicy::test_backoff_then_gives_up_naming_the_limit",
    ],
    "tests/e2e/test_scope.py::TestDelegation::test_scope_outside_the_parent_is_refused_and_leaves_nothing": [
        "tests/core/test_scope.py::TestCheckDelegation::test_uncovered_rules_are_refused",
    ],
    "tests/e2e/test_scope.py::TestDelegation::test_write_above_read_is_refused": [
        "tests/core/test_scope.py::TestCheckDelegation::test_uncovered_rules_are_refused",
    ],
    "tests/e2e/test_scope.py::TestDelegation::test_overlapping_writes_conflict_until_the_holder_stops": [
        "tests/core/e2e_rules/test_scope.py::TestScope::test_a_childs_write_conflicts_with_an_overlapping_one_until_it_shuts_down",
        "tests/core/test_scope.py::TestCheckDelegation::test_overlapping_writes_conflict",
    ],
    "tests/e2e/test_scope.py::TestDelegation::test_status_shows_scope_delegations_and_enforcement": [
        "tests/core/e2e_rules/test_scope.py::TestScope::test_a_ready_child_is_recorded_with_the_scope_delegated_to_it",
    ],
    "tests/e2e/test_scope.py::TestEnforcement::test_parent_cannot_write_where_a_child_holds_write_until_it_stops": [
        "tests/core/e2e_rules/test_scope.py::TestScope::test_the_parents_turns_only_read_what_a_child_holds_for_write_until_it_is_gone",
    ],
    "tests/e2e/test_scope.py::TestExactExclusion::test_the_parent_keeps_w_and_only_w_sub_is_read_only": [
        "tests/core/e2e_rules/test_scope.py::TestScope::test_the_parents_turns_only_read_what_a_child_holds_for_write_until_it_is_gone",
        "tests/core/test_scope.py::TestEffectiveScope::test_effective_permission",
    ],
    "tests/e2e/test_scope.py::TestApproximateExclusion::test_the_parent_cannot_create_entries_beside_the_held_path": [
        "tests/core/e2e_rules/test_scope.py::TestScope::test_the_parents_turns_only_read_what_a_child_holds_for_write_until_it_is_gone",
    ],
    "tests/e2e/test_smoke.py::TestTree::test_spawn_list_stop_leaves_nothing": [
        "tests/core/e2e_rules/test_smoke.py::TestSmoke::test_an_idle_tree_stops_clean_once_its_children_said_shut_down",
    ],
    "tests/e2e/test_stop.py::TestClean::test_children_exit_before_their_parent": [
        "tests/core/e2e_rules/test_stop.py::TestStop::test_children_stop_first_and_their_shut_down_is_noted_before_the_pod_ends",
    ],
    "tests/e2e/test_stop.py::TestClean::test_stop_cancels_a_running_turn": [
        "tests/core/e2e_rules/test_stop.py::TestStop::test_a_running_turn_is_stopped_after_the_children_and_its_cancel_is_clean",
    ],
    "tests/e2e/test_stop.py::TestDrain::test_drained_with_discards": [
        "tests/core/e2e_rules/test_stop.py::TestStop::test_drain_drops_a_pending_wake_up_and_ends_drained_with_discards",
    ],
    "tests/e2e/test_stop.py::TestDrain::test_discards_counted_when_the_turn_ends_before_the_children": [
        "tests/core/e2e_rules/test_stop.py::TestStop::test_a_wake_up_left_by_a_turn_ended_while_the_children_stop_is_discarded",
    ],
    "tests/e2e/test_stop.py::TestDrain::test_drain_of_a_turn_that_finishes_in_time_is_clean": [
        "tests/core/e2e_rules/test_stop.py::TestStop::test_drain_with_nothing_queued_is_clean",
    ],
    "tests/e2e/test_stop.py::TestForceKilled::test_drain_longer_than_the_timeout": [
        "tests/core/test_machine.py::TestStop::test_stop_phases_in_order_with_a_child_and_a_turn",
    ],
    "tests/e2e/test_stop.py::TestForceKilled::test_stopped_child_is_killed_by_its_parent": [
        "tests/core/e2e_rules/test_stop.py::TestStop::test_a_child_killed_at_the_deadline_makes_the_stop_force_killed",
    ],
    "tests/e2e/test_stop.py::TestForceKilled::test_turn_ignoring_sigterm_past_the_timeout": [
        "tests/core/test_machine.py::TestStop::test_stop_phases_in_order_with_a_child_and_a_turn",
    ],
    "tests/e2e/test_stop.py::TestTimeout::test_no_kill_leaves_the_pod_running": [
        "tests/core/e2e_rules/test_stop.py::TestStop::test_after_a_stop_given_up_the_pod_runs_on_and_a_second_stop_ends_it",
        "tests/core/test_machine.py::TestStop::test_a_timeout_gives_the_stop_up_and_answers",
    ],
    "tests/e2e/test_stop.py::TestTimeout::test_no_kill_with_a_stopped_child": [
        "tests/core/e2e_rules/test_stop.py::TestStop::test_a_child_outliving_a_no_kill_stop_gives_it_up_and_leaves_the_pod_idle",
    ],
    "tests/e2e/test_stop.py::TestTimeout::test_no_kill_leaves_a_turn_ignoring_sigterm_running": [
        "tests/core/test_machine.py::TestStop::test_a_timeout_gives_the_stop_up_and_answers",
        "tests/core/e2e_rules/test_stop.py::TestStop::test_after_a_stop_given_up_the_pod_runs_on_and_a_second_stop_ends_it",
    ],
    "tests/e2e/test_trust.py::TestForgedEventsFromTheTestProcess::test_refused_and_nothing_changes": [
        "tests/core/e2e_rules/test_trust.py::TestTrust::test_forged_events_acks_and_adoptions_are_forbidden_and_change_nothing",
    ],
    "tests/e2e/test_trust.py::TestForgedEventsFromAnotherProcess::test_refused_and_nothing_changes": [
        "tests/core/e2e_rules/test_trust.py::TestTrust::test_forged_events_acks_and_adoptions_are_forbidden_and_change_nothing",
    ],
    "tests/e2e/test_trust.py::TestForgedEventsFromTheChildsAgent::test_refused_and_only_the_genuine_event_arrives": [
        "tests/core/e2e_rules/test_trust.py::TestTrust::test_forged_events_acks_and_adoptions_are_forbidden_and_change_nothing",
        "tests/core/e2e_rules/test_trust.py::TestTrust::test_only_the_genuine_event_of_the_childs_process_is_noted",
    ],
    "tests/e2e/test_trust.py::TestBadNamesOnTheWire::test_spawn": [
        "tests/core/e2e_rules/test_trust.py::TestTrust::test_a_name_breaking_the_rule_is_refused_naming_the_rule",
        "tests/core/e2e_rules/test_trust.py::TestTrust::test_a_name_the_rule_allows_is_accepted",
    ],
    "tests/e2e/test_trust.py::TestBadNamesOnTheWire::test_names_of_other_pods": [
        "tests/core/e2e_rules/test_trust.py::TestTrust::test_acks_and_adoptions_naming_a_pod_not_registered_here_are_refused",
    ],
    "tests/e2e/test_trust.py::TestBadNamesOnTheWire::test_restart_child": [
        "tests/core/e2e_rules/test_trust.py::TestTrust::test_a_name_breaking_the_rule_is_refused_naming_the_rule",
    ],
    "tests/e2e/test_turns.py::TestSend::test_second_send_during_a_turn_is_already_running": [
        "tests/core/e2e_rules/test_turns.py::TestTurns::test_a_second_send_during_a_turn_is_already_running",
    ],
    "tests/e2e/test_turns.py::TestSend::test_pod_without_agent_answers_no_agent": [
        "tests/core/e2e_rules/test_turns.py::TestTurns::test_a_pod_without_agent_answers_no_agent",
    ],
    "tests/e2e/test_turns.py::TestNotificationsInTurns::test_notifications_precede_the_input": [
        "tests/core/e2e_rules/test_turns.py::TestTurns::test_a_childs_turn_goes_before_the_next_input_and_is_drained_by_it",
        "tests/core/test_machine.py::TestSend::test_the_turn_input_carries_the_drained_notifications",
    ],
    "tests/e2e/test_turns.py::TestNotificationsInTurns::test_spawn_and_notifications_from_inside_a_turn": [
        "tests/core/e2e_rules/test_turns.py::TestTurns::test_a_child_spawned_during_a_turn_is_registered_and_its_turn_drained",
    ],
    "tests/e2e/test_turns.py::TestStartAndWake::test_task_runs_a_first_turn": [
        "tests/core/test_machine.py::TestTask::test_the_task_begins_when_due",
    ],
    "tests/e2e/test_turns.py::TestStartAndWake::test_wake_on_notify": [
        "tests/core/test_machine.py::TestNotifications::test_it_wakes_an_idle_wake_on_notify_pod_with_the_notification_as_input",
    ],
    "tests/e2e/test_turns.py::TestManyTurns::test_200_turns": [
        "tests/core/e2e_rules/test_turns.py::TestTurns::test_200_turns_are_all_answered_and_recorded",
    ],
}
"""Each end-to-end test that checks a rule of ``podd.core``, and the table tests that check
the same rule."""


IO_ONLY: dict[str, str] = {
    "tests/e2e/test_abuse.py::TestRandomBytes::test_a_mebibyte_of_random_lines": (
        "random bytes get error frames from the server's framing and decoder, before any input"
    ),
    "tests/e2e/test_abuse.py::TestRandomBytes::test_random_bytes_without_a_newline": (
        "the framing's 1 MiB line limit (frame_too_large)"
    ),
    "tests/e2e/test_abuse.py::TestBursts::test_a_thousand_bad_lines": (
        "bad lines answered by the server's decoder, one reply each"
    ),
    "tests/e2e/test_abuse.py::TestBursts::test_five_thousand_bad_lines": (
        "bad lines answered by the server's decoder under backpressure"
    ),
    "tests/e2e/test_abuse.py::TestBursts::test_five_thousand_pipelined_pings": (
        "pipelined requests and the connection's reply queue"
    ),
    "tests/e2e/test_abuse.py::TestBursts::test_good_and_bad_lines_are_answered_in_order": (
        "reply order across the decoder and the dispatch loop's batches"
    ),
    "tests/e2e/test_abuse.py::TestInvalidUtf8::test_each_line_is_refused": (
        "lines that are not UTF-8 refused by the decoder"
    ),
    "tests/e2e/test_abuse.py::TestHugeLine::test_ten_mebibytes": (
        "frame_too_large for a 10 MiB line, and the pod's memory"
    ),
    "tests/e2e/test_abuse.py::TestManyConnections::test_a_thousand_idle_connections": (
        "a thousand idle sockets served by the server"
    ),
    "tests/e2e/test_abuse.py::TestSlowClients::test_lines_sent_a_byte_at_a_time": (
        "partial lines held by the framing while others are served"
    ),
    "tests/e2e/test_abuse.py::TestNonReadingClients::test_five_clients_that_never_read": (
        "backpressure on clients that do not read their replies"
    ),
    "tests/e2e/test_abuse.py::TestFairness::test_pings_are_answered_while_five_clients_flood_status": (
        "round-robin of busy connections in the dispatch loop"
    ),
    "tests/e2e/test_abuse.py::TestHalfClosedConnections::test_every_kind_of_reply_arrives": (
        "replies, deferred ones too, reach a half-closed connection"
    ),
    "tests/e2e/test_abuse.py::TestHalfClosedConnections::test_two_hundred_at_once": (
        "replies reach two hundred half-closed connections"
    ),
    "tests/e2e/test_abuse.py::TestDeepNesting::test_a_hundred_thousand_levels": (
        "deeply nested JSON refused by the decoder"
    ),
    "tests/e2e/test_abuse.py::TestDeepNesting::test_nesting_the_decoder_accepts": (
        "what the codec accepts of nested params, and the order of its errors"
    ),
    "tests/e2e/test_abuse.py::TestWrongParamTypes::test_the_cases_cover_every_method_and_event_kind": (
        "the generated cases cover the wire types (protocol only, no pod)"
    ),
    "tests/e2e/test_abuse.py::TestWrongParamTypes::test_every_method": (
        "params of the wrong type refused by the codec before any input"
    ),
    "tests/e2e/test_abuse.py::TestOutOfRangeValues::test_the_pod_answers_and_survives": (
        "the params' validators and the containment of the pod's tasks"
    ),
    "tests/e2e/test_cli.py::TestTree::test_ls_and_spawn_json_shapes": (
        "the JSON documents of podd spawn and podd ls"
    ),
    "tests/e2e/test_cli.py::TestBadNames::test_refused_with_the_rule": (
        "the CLI's name check and exit status 2, with nothing created"
    ),
    "tests/e2e/test_cli.py::TestBadNames::test_empty_name_refused_with_the_rule": (
        "the CLI's check of an empty name and exit status 2"
    ),
    "tests/e2e/test_cli.py::TestBadNames::test_a_missing_root_is_not_created": (
        "a refused command creates no root directory"
    ),
    "tests/e2e/test_cli.py::TestDuplicates::test_duplicate_live_names": (
        "names held by live pods, found in pod.json and the processes (podd.runtime.children)"
    ),
    "tests/e2e/test_cli.py::TestUnknownParent::test_unknown_parent": (
        "exit status 3 for a parent that has no socket"
    ),
    "tests/e2e/test_cli.py::TestMissingAgent::test_root_pod": (
        "an agent command checked against PATH and the file system (podd.spawn.agent_command)"
    ),
    "tests/e2e/test_cli.py::TestMissingAgent::test_child_pod": (
        "an agent command checked by the parent's runtime before any input, nothing started"
    ),
    "tests/e2e/test_cli.py::TestLongRoot::test_root_of_150_characters": (
        "socket paths longer than sun_path holds"
    ),
    "tests/e2e/test_cli.py::TestRootOption::test_before_and_after_the_command": (
        "--root and $PODD_ROOT on the command line"
    ),
    "tests/e2e/test_cli.py::TestMissingPod::test_exit_3": (
        "exit status 3 for a pod that has no socket"
    ),
    "tests/e2e/test_cli.py::TestHumanOutput::test_63_character_name_is_not_truncated": (
        "the CLI's table and tree rendering"
    ),
    "tests/e2e/test_cli.py::TestProcesses::test_titles_and_no_spec_on_any_command_line": (
        "process titles and command lines"
    ),
    "tests/e2e/test_cli.py::TestProcesses::test_refused_first_spawn_leaves_no_process": (
        "a root's mode refused at start-up, and no process left"
    ),
    "tests/e2e/test_cli_imports.py::TestLean::test_without_pods": (
        "the modules a command imports, read from sys.modules"
    ),
    "tests/e2e/test_cli_imports.py::TestLean::test_with_a_tree_of_pods": (
        "the modules a command imports, read from sys.modules"
    ),
    "tests/e2e/test_event_stream.py::TestFeed::test_a_subscriber_that_never_reads_is_dropped_and_the_pod_answers": (
        "the event feed's bounded queue and its events_end frame (podd.runtime.event_feed)"
    ),
    "tests/e2e/test_event_stream.py::TestEventsCommand::test_lists_recent_events_by_time": (
        "podd events gathers and sorts the feeds of a subtree (podd.cli)"
    ),
    "tests/e2e/test_event_stream.py::TestEventsCommand::test_follows_a_tree_of_13_pods_with_late_spawns": (
        "podd events --follow subscribes to every pod of a growing tree"
    ),
    "tests/e2e/test_event_stream.py::TestEventsCommand::test_following_a_pod_ends_when_it_is_gone": (
        "podd events --follow ends when the pod's socket closes"
    ),
    "tests/e2e/test_event_stream.py::TestTop::test_shows_the_tree_updates_and_quits_on_q": (
        "podd top in a real terminal (tmux)"
    ),
    "tests/e2e/test_event_stream.py::test_top_refuses_without_a_terminal": (
        "podd top's terminal check and exit status"
    ),
    "tests/e2e/test_event_stream.py::TestTopModel::test_own_turns_move_state_turn_and_cost_and_applied_events_notify": (
        "podd top's model of events and status replies (podd.cli.top_model)"
    ),
    "tests/e2e/test_event_stream.py::TestTopModel::test_the_tree_is_drawn_under_the_parents": (
        "podd top's tree drawing (podd.cli.top_model)"
    ),
    "tests/e2e/test_event_stream.py::TestTopModel::test_narrow_terminals_keep_name_state_and_last_event": (
        "podd top's column layout (podd.cli.top)"
    ),
    "tests/e2e/test_event_stream.py::TestTopModel::test_a_screen_never_wraps": (
        "podd top's rendering with rich"
    ),
    "tests/e2e/test_fork_servers.py::TestOwnForkServer::test_children_come_from_the_fork_server_forked_with_the_pod": (
        "which process forks a pod's children (fork servers)"
    ),
    "tests/e2e/test_fork_servers.py::TestOwnForkServer::test_a_stopped_pod_takes_its_fork_server_along": (
        "a pod's fork server ends with the pod"
    ),
    "tests/e2e/test_liveness.py::TestReusedPid::test_probe_says_dead_for_a_reused_pid": (
        "a reused pid told apart by its start time (podd.proc.facts, podd.runtime.probe)"
    ),
    "tests/e2e/test_liveness.py::TestStaleAndReclaim::test_sigkilled_root_is_stale_then_reclaimed_once": (
        "podd ls and podd reclaim of a dead root pod (podd.cli.inventory, its leftovers)"
    ),
    "tests/e2e/test_liveness.py::TestStaleAndReclaim::test_reclaim_json_shape": (
        "the JSON document of podd reclaim and what it leaves on disk"
    ),
    "tests/e2e/test_liveness.py::TestStaleAndReclaim::"
    "test_reclaim_removes_the_temp_file_of_a_writer_killed_mid_write": (
        "podd reclaim's sweep of the files in the root (podd.store.atomic)"
    ),
    "tests/e2e/test_liveness.py::TestRootPodDeath::test_turns_of_killed_root_pods_are_killed": (
        "the root fork server kills the turns of a SIGKILLed root pod"
    ),
    "tests/e2e/test_llm_pods.py::TestDriverChoice::test_auto_detection_and_override": (
        "the driver chosen from the agent command (podd.drivers) and the doubles' output"
    ),
    "tests/e2e/test_llm_pods.py::TestDriverChoice::test_a_cmd_the_forced_driver_cannot_run_is_refused": (
        "the driver's check of the agent command, before any input"
    ),
    "tests/e2e/test_llm_pods.py::TestDriverChoice::test_leading_assignments_reach_claude": (
        "the claude driver's command line and a write under confinement"
    ),
    "tests/e2e/test_llm_pods.py::TestClaudeSessions::test_the_conversation_survives_stop_and_restart": (
        "the session and the turns restored from the journal and the agent's state dir"
    ),
    "tests/e2e/test_llm_pods.py::TestCodexThreads::test_exec_then_exec_resume": (
        "the codex driver's command lines and thread id"
    ),
    "tests/e2e/test_llm_pods.py::TestCodexDaemonDir::test_a_codex_turn_finds_it_there": (
        "a directory the agent's CLI needs outside its scope, made on the disk"
    ),
    "tests/e2e/test_llm_pods.py::TestStateDirs::test_each_pod_has_its_own_state_dir": (
        "each agent's state dir and environment"
    ),
    "tests/e2e/test_llm_pods.py::TestStateDirs::test_writes_outside_the_scope_fail_while_the_state_dir_is_writable": (
        "Landlock confinement with a writable state dir"
    ),
    "tests/e2e/test_llm_pods.py::TestStateDirs::test_purge_removes_what_a_stopped_pod_kept": (
        "podd reclaim --purge and the files a stopped pod kept"
    ),
    "tests/e2e/test_llm_pods.py::TestStateDirs::test_spawning_the_name_again_starts_afresh": (
        "what a new pod of an old name finds in .kept"
    ),
    "tests/e2e/test_llm_pods.py::TestAuthentication::test_a_login_in_the_state_dir_is_used": (
        "the agent's login in its state dir"
    ),
    "tests/e2e/test_llm_pods.py::TestAuthentication::test_the_users_own_login_is_used": (
        "the user's login copied into the agent's state dir"
    ),
    "tests/e2e/test_llm_pods.py::TestTurnRecords::test_claude_record": (
        "the record the claude driver reads from stream-json"
    ),
    "tests/e2e/test_llm_pods.py::TestTurnRecords::test_codex_record": (
        "the record the codex driver reads from its JSON events"
    ),
    "tests/e2e/test_llm_pods.py::TestTurnRecords::test_codex_reports_no_permission_denials": (
        "the codex driver reports no permission denials"
    ),
    "tests/e2e/test_llm_pods.py::TestTurnRecords::test_shell_record": (
        "the record of a shell agent: its stdout, no usage"
    ),
    "tests/e2e/test_llm_pods.py::TestTurnRecords::test_reported_error_with_exit_0_errs_the_turn": (
        "an error the agent reports, read by its driver, errs the turn (podd.runtime.turn_runner)"
    ),
    "tests/e2e/test_llm_pods.py::TestTurnRecords::test_reported_error_names_the_agents_reason": (
        "the agent's own reason for an error, read by its driver"
    ),
    "tests/e2e/test_llm_pods.py::TestResults::test_ls_has_a_cost_column": (
        "the COST column of podd ls"
    ),
    "tests/e2e/test_llm_pods.py::TestOutput::test_output_views": (
        "podd output's views of the kept output"
    ),
    "tests/e2e/test_mcp.py::TestConfigFor::test_names_the_server_acting_as_the_pod": (
        "the --mcp-config document (podd.mcp_server)"
    ),
    "tests/e2e/test_mcp.py::TestConfigFor::test_importing_it_imports_neither_mcp_nor_trio": (
        "the modules podd.mcp_server imports"
    ),
    "tests/e2e/test_mcp.py::TestFailures::test_a_bracketed_code_is_the_code": (
        "a CLI run's failure as a tool error (podd.mcp_server.runner)"
    ),
    "tests/e2e/test_mcp.py::TestFailures::test_usage_is_invalid_params": (
        "a CLI run's failure as a tool error (podd.mcp_server.runner)"
    ),
    "tests/e2e/test_mcp.py::TestFailures::test_exit_3_is_not_found": (
        "a CLI run's failure as a tool error (podd.mcp_server.runner)"
    ),
    "tests/e2e/test_mcp.py::TestFailures::test_a_crash_gives_its_last_line": (
        "a CLI run's failure as a tool error (podd.mcp_server.runner)"
    ),
    "tests/e2e/test_mcp.py::TestFailures::test_an_errored_turn_in_human_output_gives_stdout": (
        "a CLI run's failure as a tool error (podd.mcp_server.runner)"
    ),
    "tests/e2e/test_mcp.py::TestFailures::test_a_run_past_its_bound_is_a_timeout": (
        "a CLI run past its bound as a tool error (podd.mcp_server.runner)"
    ),
    "tests/e2e/test_mcp.py::TestEnvironment::test_for_root_pods_no_turn_variable_is_left": (
        "the environment the MCP server runs the CLI in"
    ),
    "tests/e2e/test_mcp.py::TestEnvironment::test_acting_as_the_turns_own_pod_keeps_the_turn": (
        "the environment the MCP server runs the CLI in"
    ),
    "tests/e2e/test_mcp.py::TestEnvironment::test_acting_as_another_pod_names_it": (
        "the environment the MCP server runs the CLI in"
    ),
    "tests/e2e/test_mcp.py::TestServer::test_lists_the_ten_tools_with_input_schemas": (
        "the MCP server's tools and their schemas over stdio"
    ),
    "tests/e2e/test_mcp.py::TestServer::test_ends_on_eof_with_a_call_in_flight_and_writes_only_frames": (
        "the MCP server ends on EOF and writes only frames"
    ),
    "tests/e2e/test_mcp.py::TestTree::test_pod_name_from_the_environment_is_the_pod_acted_as": (
        "POD_NAME in the MCP server's environment"
    ),
    "tests/e2e/test_orchestration.py::TestGate::test_gate_is_confined_like_the_agent": (
        "the gate runs confined (Landlock)"
    ),
    "tests/e2e/test_orchestration.py::TestGate::test_gate_that_times_out_is_killed": (
        "the gate's timeout kills its process group (podd.runtime.turn_runner)"
    ),
    "tests/e2e/test_orchestration.py::TestGate::test_no_gate_after_an_errored_turn": (
        "podd.runtime.turn_runner runs the gate only after a turn that would finish"
    ),
    "tests/e2e/test_orchestration.py::TestMaxRunning::test_slot_of_a_killed_holder_comes_back": (
        "a slot lease ends with its holder's connection (podd.runtime.slots)"
    ),
    "tests/e2e/test_orchestration.py::TestPoolRestart::"
    "test_a_restarted_pool_counts_the_turn_that_still_runs": (
        "a holder asks a restarted pool again for the slot it runs on (podd.runtime.slots)"
    ),
    "tests/e2e/test_restart.py::TestRestartAfterKill::test_root_pod": (
        "the registry, notifications and turns restored from the journal (podd.store.journal)"
    ),
    "tests/e2e/test_restart.py::TestRestartAfterKill::test_stop_then_restart": (
        "the state restored from the journal; podd restart refuses a running pod"
    ),
    "tests/e2e/test_restart.py::TestContainment::test_busy_pod_reports_lag": (
        "the dispatch loop's lag figures (podd.runtime.diagnostics)"
    ),
    "tests/e2e/test_restart.py::TestContainment::test_injected_handler_fault": (
        "a handler's fault contained by the dispatch loop and reported upward"
    ),
    "tests/e2e/test_scope.py::TestEnforcement::test_writes_inside_succeed_and_outside_fail": (
        "Landlock holds an agent to its write scope"
    ),
    "tests/e2e/test_scope.py::TestEnforcement::test_a_read_only_child_cannot_write": (
        "Landlock holds a read-only child to reading"
    ),
    "tests/e2e/test_scope.py::TestEnforcement::test_the_turn_can_use_its_temp_dir": (
        "a turn's temp dir is writable under confinement"
    ),
    "tests/e2e/test_scope.py::TestExactExclusion::test_the_child_writes_what_it_holds": (
        "the kernel confines the child to what it holds"
    ),
    "tests/e2e/test_scope.py::TestNestedSandbox::test_the_agent_runs_bubblewrap_and_writes_only_in_its_scope": (
        "confinement by mounts alone, with bubblewrap inside it"
    ),
    "tests/e2e/test_scope.py::TestNestedSandbox::test_a_child_has_it_only_when_asked": (
        "--nested-sandbox per pod and its confinement"
    ),
    "tests/e2e/test_trust.py::TestBadNamesOnTheCommandLine::test_every_command": (
        "the CLI's name check, exit status 2, nothing created"
    ),
    "tests/e2e/test_trust.py::TestOpenDirectoriesAreRefused::test_root": (
        "a root directory's mode checked at start-up"
    ),
    "tests/e2e/test_trust.py::TestOpenDirectoriesAreRefused::test_pod_directory_of_a_root_pod": (
        "a pod directory's mode checked at start-up"
    ),
    "tests/e2e/test_trust.py::TestOpenDirectoriesAreRefused::test_pod_directory_of_a_child": (
        "a child's directory mode checked at start-up"
    ),
    "tests/e2e/test_trust.py::TestOpenDirectoriesAreRefused::test_restart_into_a_directory_opened_meanwhile": (
        "a directory's mode checked when a pod is restarted"
    ),
    "tests/e2e/test_demo.py::test_the_demo_shows_both_workers_reporting_and_cleans_up": (
        "the README's demo script, run whole"
    ),
    "tests/e2e/test_trust.py::TestModes::test_root_and_child": (
        "directory and socket modes under any umask"
    ),
    "tests/e2e/test_trust.py::TestModes::test_every_file_a_pod_writes_is_private": (
        "the modes of the files a pod and its turn create, under any umask"
    ),
    "tests/e2e/test_turns.py::TestSend::test_cat_gets_the_input": (
        "the input on the agent's stdin and its exit status"
    ),
    "tests/e2e/test_turns.py::TestSend::test_exit_status_3_is_an_error": (
        "an agent's exit status in its record and in podd status"
    ),
    "tests/e2e/test_turns.py::TestSend::test_turn_timeout_kills_the_whole_group": (
        "the turn timeout kills the agent's process group"
    ),
    "tests/e2e/test_turns.py::TestNotificationsInTurns::test_turn_environment": (
        "the POD_* variables of a turn's environment"
    ),
    "tests/e2e/test_turns.py::TestShellPrograms::test_compound_commands_run_as_agents": (
        "shell programs run as agents"
    ),
    "tests/e2e/test_turns.py::TestShellPrograms::test_what_cannot_run_is_refused_and_leaves_nothing": (
        "agent commands checked before spawning, nothing left"
    ),
    "tests/e2e/test_wire.py::TestPing::test_ping": ("ping answered over a raw socket"),
    "tests/e2e/test_wire.py::TestPing::test_many_requests_on_one_connection_are_answered_in_turn": (
        "replies on one connection in request order"
    ),
    "tests/e2e/test_wire.py::TestPing::test_reply_reaches_a_client_that_half_closed": (
        "a reply reaches a half-closed connection"
    ),
    "tests/e2e/test_wire.py::TestPing::test_socat_is_a_usable_client": ("socat as a client"),
    "tests/e2e/test_wire.py::TestBadInput::test_invalid_json": (
        "invalid JSON refused by the decoder"
    ),
    "tests/e2e/test_wire.py::TestBadInput::test_unknown_method": (
        "unknown methods refused by the decoder"
    ),
    "tests/e2e/test_wire.py::TestBadInput::test_bad_params_for_every_method": (
        "params of the wrong shape refused by the codec before any input"
    ),
    "tests/e2e/test_wire.py::TestBadInput::test_bad_request_id": (
        "request ids of the wrong type refused by the decoder"
    ),
    "tests/e2e/test_wire.py::TestBadInput::test_a_frame_of_2_mib": (
        "frame_too_large for a 2 MiB frame"
    ),
    "tests/e2e/test_wire.py::TestBadInput::test_a_frame_just_under_1_mib_is_served": (
        "a frame of exactly 1 MiB is served"
    ),
    "tests/e2e/test_wire.py::TestNotificationFrames::test_no_reply_without_id": (
        "no reply to a frame without an id"
    ),
    "tests/e2e/test_wire.py::TestPermissions::test_modes": (
        "directory and socket modes and owners"
    ),
}
"""Each end-to-end test that checks only what the runtime or the system can, and what."""


def ids_of(directory: str) -> set[str]:
    """Every test function of ``<directory>/test_*.py``, as ``FILE::Class::name`` or
    ``FILE::name`` (the repository's root first)."""
    top = pathlib.Path(__file__).resolve().parents[3]
    found: set[str] = set()
    for path in sorted((top / directory).rglob("test_*.py")):
        prefix = path.relative_to(top).as_posix()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                if node.name.startswith("test_"):
                    found.add(f"{prefix}::{node.name}")
            elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
                found.update(
                    f"{prefix}::{node.name}::{item.name}"
                    for item in node.body
                    if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
                    and item.name.startswith("test_")
                )
    return found


class TestAccounting:
    """Every end-to-end test is either mirrored by table tests that exist or said to
    check only what the runtime or the system can."""

    def test_every_e2e_test_is_in_exactly_one_of_the_two_dicts(self) -> None:
        e2e = ids_of("tests/e2e")
        assert ([], []) == (
            sorted(e2e - set(MIRRORED) - set(IO_ONLY)),
            sorted(set(MIRRORED) & set(IO_ONLY)),
        )

    def test_every_id_in_the_dicts_names_an_e2e_test(self) -> None:
        assert [] == sorted((set(MIRRORED) | set(IO_ONLY)) - ids_of("tests/e2e"))

    def test_every_mirror_names_existing_table_tests(self) -> None:
        tables = ids_of("tests/core")
        assert ([], []) == (
            sorted(e2e for e2e, mirrors in MIRRORED.items() if not mirrors),
            sorted({m for mirrors in MIRRORED.values() for m in mirrors} - tables),
        )

    def test_every_io_only_test_says_why(self) -> None:
        assert [] == sorted(e2e for e2e, reason in IO_ONLY.items() if not reason.strip())
