// PM2 description of the CaptchaOCR stack: embedded Redis (only when REDIS_URL is unset), the API,
// the RQ workers, rq-dashboard and the log rotator. Settings come from the one Python settings object,
// read through `python -m shared.settings`, so no default is written twice.
// Every Python app has a memory cap (max_memory_restart, per role): PM2 restarts a process that passes
// it, the seed's ceiling against memory ONNX Runtime accumulates. Redis is capped by its own maxmemory.
// Start with `scripts/up.sh`; a worker-only machine runs `CAPTCHAOCR_APPS=worker scripts/up.sh`.
const path = require("path");
const { execFileSync } = require("child_process");

const root = __dirname;
const python = path.join(root, ".venv", "bin", "python");
const settings = JSON.parse(execFileSync(python, ["-m", "shared.settings"], { cwd: root }).toString());
const logs = path.join(settings.state_dir, "logs");
const env = { REDIS_URL: settings.effective_redis_url, ORT_LOGGING_LEVEL: "3", PYTHONUNBUFFERED: "1" };

function pythonApp(name, args, extra = {}) {
  return {
    name,
    script: python,
    args,
    interpreter: "none",
    cwd: root,
    env,
    autorestart: true,
    restart_delay: 500,
    kill_timeout: 5000,
    out_file: path.join(logs, `${name}.out.log`),
    error_file: path.join(logs, `${name}.err.log`),
    merge_logs: true,
    ...extra,
  };
}

const apps = [
  pythonApp("api", ["-m", "api"], { max_memory_restart: settings.api_max_memory }),
  pythonApp("worker", ["-m", "worker"], {
    instances: settings.workers, exec_mode: "fork", max_memory_restart: settings.worker_max_memory,
  }),
  // Not `python -m rq_dashboard`: the launcher keeps it from unpickling and from cross-site requests.
  pythonApp("dashboard", ["-m", "shared.dashboard"], { max_memory_restart: settings.dashboard_max_memory }),
  // Fine-tunes site models (torch) at a low CPU priority; workers read the models it puts in Redis.
  pythonApp("trainer", ["-m", "trainer"], { max_memory_restart: settings.trainer_max_memory }),
  // pm2-logrotate (installed by bootstrap from package.json) run as a plain app rather than
  // `pm2 install`ed, which would download it at start; it reads its settings from the env var of its name.
  {
    name: "logrotate",
    script: require.resolve("pm2-logrotate/app.js"),
    cwd: root,
    autorestart: true,
    max_memory_restart: settings.log_rotator_max_memory,
    out_file: path.join(logs, "logrotate.out.log"),
    error_file: path.join(logs, "logrotate.err.log"),
    env: {
      "pm2-logrotate": JSON.stringify({
        max_size: settings.log_max_size,
        retain: settings.log_retain,
        workerInterval: settings.log_check_interval_s,
        compress: false,
        rotateModule: true,
      }),
    },
  },
];
if (settings.embedded_redis) {
  apps.unshift(pythonApp("redis", ["-m", "shared.embedded_redis"]));
}

// CAPTCHAOCR_APPS=worker (comma-separated names) starts a subset, e.g. workers alone on a second machine;
// the log rotator runs wherever PM2 runs anything.
const only = (process.env.CAPTCHAOCR_APPS || "").split(",").filter(Boolean);
const wanted = (app) => !only.length || only.includes(app.name) || app.name === "logrotate";
module.exports = { apps: apps.filter(wanted) };
