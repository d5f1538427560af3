// Reads an iCalendar object on stdin with Mozilla's ical.js (the parser inside Thunderbird) and prints
// per VEVENT the ORGANIZER and ATTENDEE values and CN parameters as JSON. Used by tests/calendar_readers.py.
import ICAL from "ical.js";
import { readFileSync } from "node:fs";

const calendar = new ICAL.Component(ICAL.parse(readFileSync(0, "utf8")));
const events = calendar.getAllSubcomponents("vevent").map((vevent) => {
  const read = (name) => vevent.getAllProperties(name).map((property) => ({
    value: property.getFirstValue(),
    cn: property.getParameter("cn") ?? null,
  }));
  return { uid: vevent.getFirstPropertyValue("uid"), organizer: read("organizer"), attendee: read("attendee") };
});
process.stdout.write(JSON.stringify({ method: calendar.getFirstPropertyValue("method"), events }));
