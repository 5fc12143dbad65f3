"""Every Firestore document of the marketplace, in one tuple: ``DOCUMENTS``; and the names
:mod:`marketplace.models` gives (imported through it on the first use of one of them).
"""

from firekit.docmodel import Document
from marketplace.models.audit import AuditEntry
from marketplace.models.billing import Customer, Payment, Subscription
from marketplace.models.conversations import Conversation, Message
from marketplace.models.deals import Offer
from marketplace.models.limits import Usage
from marketplace.models.listings import Listing
from marketplace.models.photos import PhotoUploads
from marketplace.models.reports import Report
from marketplace.models.searches import SavedSearch
from marketplace.models.users import (
    Device,
    Favorite,
    Notification,
    PrivateAccount,
    Profile,
    UnreadCounter,
)
from marketplace.models.viewings import (
    Availability,
    CalendarFeed,
    Viewing,
    ViewingHold,
    ViewingLock,
)

DOCUMENTS: tuple[type[Document], ...] = (
    Profile,
    PrivateAccount,
    Device,
    Notification,
    Favorite,
    UnreadCounter,
    Listing,
    PhotoUploads,
    SavedSearch,
    Availability,
    Viewing,
    ViewingLock,
    ViewingHold,
    CalendarFeed,
    Offer,
    Conversation,
    Message,
    Report,
    Customer,
    Subscription,
    Payment,
    AuditEntry,
    Usage,
)

__all__ = [
    "DOCUMENTS",
    "AuditEntry",
    "Availability",
    "CalendarFeed",
    "Conversation",
    "Customer",
    "Device",
    "Favorite",
    "Listing",
    "Message",
    "Notification",
    "Offer",
    "Payment",
    "PhotoUploads",
    "PrivateAccount",
    "Profile",
    "Report",
    "SavedSearch",
    "Subscription",
    "UnreadCounter",
    "Usage",
    "Viewing",
    "ViewingHold",
    "ViewingLock",
]
