"""Test infrastructure shared by tests/ and bench/: a throwaway Redis, the stack as real processes, network
namespace hosts, the load generator and the soak run.

Not installed with the package (pyproject.toml lists only api, worker and shared): everything here runs
the project from its source checkout (``python -m api`` in the project folder, scripts/, PM2 from
node_modules, the corpus in ../shared), so an installed copy could not work. tests/ and bench/ import it
from the checkout, as they are run from there.
"""
