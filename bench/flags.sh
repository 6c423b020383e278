# Sourced by bench/compare and bench/ab: the server flags and the reject load they share, so that
# an A/B ratio and the `reject` row of the comparison measure the same thing.

# Limits off (they are measured elsewhere), presence valid for the whole run, one crypto thread
# because the server owns one core.
open_limits=(--pres-ttl 3600 --conn-rate 1e9 --conn-burst 1e9 --ws-frame-rate 1e9 --ws-frame-burst 1e9
  --ip-rate 1e9 --ip-burst 1e9 --same-state-interval-ms 0 --bad-signature-strikes 0 --crypto-threads 1
  --max-connections-per-ip 0
  --log-level warn)
no_issuer_limit=(--issuer-rate 1e9 --issuer-burst 1e9)
# Rejection before signature work: the `--reject-set` tokens (a duplicate, one over this issuer
# quota, a bad header, an expired one), cycled over 4 connections with 32 in flight each.
reject_issuer_limit=(--issuer-rate 0.0001 --issuer-burst 1)
reject_load=(--label reject --conns 4 --window 32 --cycle)
