"""Use cases: services that hold MindFu's own logic, built from ports passed to their constructors."""
