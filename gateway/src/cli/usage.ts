export const USAGE = `ao — agent-orchestrator

Usage:
  ao serve [--port N] [--host H] [--no-node]
                                            gateway + runtime node (+ inspector) on :4000;
                                            --no-node: a gateway only (needs NATS_URL: nodes take its runs)
  ao node                                   a headless runtime node (NATS_URL: it pulls runs and node tasks from the cluster)
  ao run <graph> [--input JSON] [--watch]   start a run; --watch follows its nodes live
  ao runs [--status S] [--graph G] [--since 24h|DATE] [--until DATE] [--id PREFIX] [--limit N]
                                            runs, newest first, searched by status, graph, creation time, id prefix
  ao show <run-id> [--events] [--json]      a run's status, times, usage, nodes and output; --json: the raw run
  ao watch <run-id>                         follow a run (running or finished) as run --watch prints it; exit code:
                                            0 succeeded, 1 failed, 3 budget_exceeded, 4 cancelled, 5 waiting for a person
  ao cancel <run-id>
  ao replay <run-id> --from-step N [--recorded | --lenient] [--overrides JSON] [--watch]
                                            replay (or, with --overrides, fork) a run from a checkpoint
  ao diff <run-a> <run-b>                   where two runs first differ, and their node outputs
  ao export <run-id> [-o FILE] [--no-checkpoints]
                                            a finished run as one JSON file (format ao-run, version 1): run,
                                            every envelope (answers to waits included), checkpoints
  ao import <FILE> [--as ID]                load a run file as a run (shown, replayed, diffed like any); --as: under
                                            a new id (its replay against this checkout must reproduce it)
  ao waiting                                runs waiting for a person, and what they wait for
  ao signal <run-id> --node N (--approve | --reject | --payload JSON) [--comment C] [--wait ID] [--watch]
                                            answer what a run waits for (an approval, an agent's question)
  ao graphs [<name>]                        every graph's edges; with a name, its nodes and input fields
  ao verify [--since 24h] [--graph G] [--status S] [--limit N] [--json] [--junit FILE]
  ao verify <FILE|DIR>... [--json] [--junit FILE]
                                            replay finished runs of the store, or run files, against this
                                            checkout (recorded, in process, nothing written); exit code 0
                                            only if none diverged
  ao keys create --tenant T [--read-only] [--name N] | keys list | keys revoke <id>
                                            API keys (written to the store; the first one turns auth on)

A <run-id> is a run's id or a unique prefix of it of at least 8 characters (\`ao show 3f2a9c1e\`).

run/runs/show/graphs/export/import talk to the gateway at AO_URL; without it, to the \`ao serve\` that holds
AO_DATA_DIR (its address is in the directory's lock), else to http://localhost:$PORT; when none
answers they open the store themselves (embedded mode).`;
