"""Events, invitations, RSVP pages, iCalendar and iTIP replies."""
