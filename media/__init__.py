"""The media server: announcements, voicemail, voicemail access, personal queue (see README.md)."""
