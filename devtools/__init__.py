"""Development tools and data, never part of the product (nor of the services image).

- `devtools.replay`: a local SSE server speaking Wikimedia's wire format, for offline
  runs, tests and benchmarks (``python -m devtools.replay``);
- `devtools.faults`: the per-connection faults it can be told to inject;
- `devtools.recordings` and ``devtools/data/``: real recorded Wikimedia events;
- `devtools.servers`: a real Kafka broker and a real Redis for tests and benchmarks
  (testcontainers, or local servers started by ``services/local.sh``);
- `devtools.processes`: the services as processes, and what each costs (from /proc);
- `devtools.truth`: the independent ground truth, from the README's rules;
- `devtools.observe`: what a run left in Redis (through `WindowStore`) and Kafka;
- `devtools.shapes`: windows with the real stream's shape, drawn from the recording;
- `devtools.configdoc`: docs/configuration.md, generated from the settings classes;
- `devtools.screenshot`: docs/dashboard.png, taken by headless Chromium.
"""
