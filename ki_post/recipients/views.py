from flask import Blueprint

bp = Blueprint("recipients", __name__)
