"""The fault suite (`make faults`): the real stack under load while parts of it fail, and an
audit that counts, for every petition submitted, what was lost, doubled or stuck.

`python -m faults` runs every scenario on SQLite and on PostgreSQL and prints the table;
`--quick` (or `FAULTS_QUICK=1`) shortens the outages for CI. See docs/reliability.md.
"""
