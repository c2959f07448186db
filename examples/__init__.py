"""Example applications built on Leasq; ``examples/node`` is a separate Node.js package."""
