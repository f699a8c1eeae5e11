// "Use my location" on the petition form: shown only where the browser can tell its position;
// the form works the same without it (the two fields can be typed, or left empty).
(function () {
  "use strict";
  var button = document.getElementById("use-location");
  var status = document.getElementById("locate-status");
  if (!button || !status || !("geolocation" in navigator)) {
    return;
  }
  button.hidden = false;
  button.addEventListener("click", function () {
    status.textContent = button.getAttribute("data-waiting");
    navigator.geolocation.getCurrentPosition(
      function (position) {
        document.getElementById("latitude").value = position.coords.latitude.toFixed(6);
        document.getElementById("longitude").value = position.coords.longitude.toFixed(6);
        status.textContent = button.getAttribute("data-done");
      },
      function () {
        status.textContent = button.getAttribute("data-failed");
      },
      { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 }
    );
  });
})();
