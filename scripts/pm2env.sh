# Sourced by up.sh and down.sh: the state dir from the settings, and a PM2 home inside it, so the
# stack never touches a user's own ~/.pm2. PM2_WORKER_INTERVAL (ms) is how often the PM2 daemon
# compares each process's memory with its max_memory_restart; the daemon reads it when it starts.
read -r memory_check_ms state_dir < <(.venv/bin/python -c 'from shared.settings import Settings
s = Settings(); print(int(s.memory_check_interval_s * 1000), s.state_dir)')
export PM2_HOME=${PM2_HOME:-$state_dir/pm2}
export PM2_WORKER_INTERVAL=$memory_check_ms
mkdir -p "$state_dir/logs"
pm2=node_modules/.bin/pm2
