"""The paper (Magai 2023, docs/paper-protocol.md): its experiments, the rule that checks each
finding on measured tables, and the reproduction report built from the verdicts."""
