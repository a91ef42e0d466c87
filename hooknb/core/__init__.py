"""The delivery core: sessions, the engine, lanes, the inbox, hooks and their code, the guards."""
