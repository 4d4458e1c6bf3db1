# Sourced by up.sh and down.sh: the state dir from the settings, and a PM2 home inside it, so the
# stack never touches a user's own ~/.pm2.
state_dir=$(.venv/bin/python -c 'from shared.settings import Settings; print(Settings().state_dir)')
export PM2_HOME=${PM2_HOME:-$state_dir/pm2}
mkdir -p "$state_dir/logs"
pm2=node_modules/.bin/pm2
