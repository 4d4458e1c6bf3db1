// PM2 description of the CaptchaOCR stack: embedded Redis (only when REDIS_URL is unset), the API,
// the RQ workers and rq-dashboard. Settings come from the one Python settings object, read through
// `python -m shared.settings`, so no default is written twice.
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
  pythonApp("api", ["-m", "api"]),
  pythonApp("worker", ["-m", "worker"], { instances: settings.workers, exec_mode: "fork" }),
  pythonApp("dashboard", ["-m", "rq_dashboard", "--json", "--bind", settings.dashboard_host,
    "--port", String(settings.dashboard_port)], { env: { ...env, RQ_DASHBOARD_REDIS_URL: env.REDIS_URL } }),
];
if (settings.embedded_redis) {
  apps.unshift(pythonApp("redis", ["-m", "shared.embedded_redis"]));
}

// CAPTCHAOCR_APPS=worker (comma-separated names) starts a subset, e.g. workers alone on a second machine.
const only = (process.env.CAPTCHAOCR_APPS || "").split(",").filter(Boolean);
module.exports = { apps: only.length ? apps.filter((app) => only.includes(app.name)) : apps };
