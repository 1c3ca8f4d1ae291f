"""The factory protocol: the cell as a CPS node among others (DESIGN.md, "Factory protocol").

Registration with an RDF self-description and Ed25519 keys (:mod:`.registry`, :mod:`.rdf`), smart products
that auction their next process (:mod:`.product`, :mod:`.auction`, :mod:`.manager`), the node side a cell
plugs into (:mod:`.node`: ``NodeAgent(can_do=..., perform=...)``), votes and smart contracts
(:mod:`.votes`, :mod:`.voting`), a signed RFC 6962 ledger (:mod:`.merkle`, :mod:`.ledger`,
:mod:`.ledgercheck`), signed XML messages (:mod:`.messages`) over MQTT or an in-process hub (:mod:`.bus`).
Heavy or optional libraries (paho, rdflib, defusedxml) are imported where they are used.
"""

from .errors import AuthError, BusError, FactoryError, LedgerError, MessageRefused

__all__ = ["AuthError", "BusError", "FactoryError", "LedgerError", "MessageRefused"]
