// Replaced by the playground panel's d3 view.
